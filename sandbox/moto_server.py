"""moto's server, as the sandbox runs it. Two changes; everything else is moto as it is.

1. The sandbox delivers stream records to functions itself (its pollers read the streams the way
   Lambda's event source mappings do). moto, when a DynamoDB table has a Lambda event source
   mapping, tries to invoke the function on its own (which needs Docker) and then empties the
   stream's records: the pollers would never see them. That delivery is turned off.
2. moto's Kinesis shard finds its first and last sequence numbers by copying every key, and
   GetRecords scans the shard from its first record: PutRecord and GetRecords slow down as the
   shard fills, and a benchmark measures moto instead of the pipeline. Sequence numbers are
   consecutive integers (PutRecord assigns last + 1), so both become direct lookups, with the same
   results.
"""

import sys

from moto.awslambda.models import LambdaBackend
from moto.kinesis.models import Shard
from moto.server import main


def _leave_stream_records_to_the_sandbox(self, function_arn, items, source):
    return None


LambdaBackend.send_dynamodb_items = _leave_stream_records_to_the_sandbox


def _min_sequence_number(self):
    return next(iter(self.records)) if self.records else 0


def _max_sequence_number(self):
    return next(reversed(self.records)) if self.records else 0


def _get_records(self, last_sequence_id, limit):
    last = int(last_sequence_id)
    if not self.records:
        return [], last, 0
    final = next(reversed(self.records))
    results = []
    sequence = max(last + 1, next(iter(self.records)))
    while sequence <= final and (not limit or len(results) < limit):
        record = self.records.get(sequence)
        if record is not None:
            results.append(record)
            last = sequence
        sequence += 1
    behind = self.records[final].created_at - results[-1].created_at if results else 0.0
    return results, last, int(behind * 1000)


Shard.get_min_sequence_number = _min_sequence_number
Shard.get_max_sequence_number = _max_sequence_number
Shard.get_records = _get_records

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
