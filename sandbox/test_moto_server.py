#!/usr/bin/env python3
"""The sandbox's moto patches give moto's own answers: run by `make test` with the venv's Python."""

import os
import random
import sys
import unittest

from moto.kinesis.models import Shard

ORIGINAL = {
    "get_records": Shard.get_records,
    "min": Shard.get_min_sequence_number,
    "max": Shard.get_max_sequence_number,
}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_server  # noqa: E402  (applies the patches)


class KinesisShardPatch(unittest.TestCase):
    def test_same_answers_as_moto(self):
        rng = random.Random(7)
        shard = Shard(0, 0, 2**128)
        self.assertEqual(Shard.get_records(shard, "0", 10), ORIGINAL["get_records"](shard, "0", 10))
        for i in range(500):
            shard.put_record(f"k{i}", "ZGF0YQ==", None)
        self.assertEqual(Shard.get_min_sequence_number(shard), ORIGINAL["min"](shard))
        self.assertEqual(Shard.get_max_sequence_number(shard), ORIGINAL["max"](shard))
        for _ in range(300):
            last = str(rng.randint(0, 520))
            limit = rng.choice([None, 1, 7, 100, 10000])
            ours = Shard.get_records(shard, last, limit)
            theirs = ORIGINAL["get_records"](shard, last, limit)
            self.assertEqual([r.sequence_number for r in ours[0]], [r.sequence_number for r in theirs[0]])
            self.assertEqual(ours[1:], theirs[1:])

    def test_stream_delivery_is_left_to_the_sandbox(self):
        from moto.awslambda.models import LambdaBackend

        self.assertIsNone(LambdaBackend.send_dynamodb_items(None, "arn", [object()], "source"))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"moto patches: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
