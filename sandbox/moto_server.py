"""moto's server, as the sandbox runs it.

The sandbox delivers stream records to functions itself (its pollers read the streams the way
Lambda's event source mappings do). moto, when a DynamoDB table has a Lambda event source mapping,
tries to invoke the function on its own (which needs Docker) and then empties the stream's
records: the pollers would never see them. This turns that delivery off; everything else is moto
as it is.
"""

import sys

from moto.awslambda.models import LambdaBackend
from moto.server import main


def _leave_stream_records_to_the_sandbox(self, function_arn, items, source):
    return None


LambdaBackend.send_dynamodb_items = _leave_stream_records_to_the_sandbox

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
