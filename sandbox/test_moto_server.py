#!/usr/bin/env python3
"""The sandbox's moto patches give moto's own answers: run by `make test` with the venv's Python."""

import os
import random
import sys
import unittest

import moto.backends
from moto.kinesis.models import Shard

from moto.cloudwatch.models import CloudWatchBackend

ORIGINAL = {
    "get_metric_data": CloudWatchBackend.get_metric_data,
    "get_records": Shard.get_records,
    "min": Shard.get_min_sequence_number,
    "max": Shard.get_max_sequence_number,
    "modules": moto.backends.list_of_moto_modules,
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
        self.assertIsNone(
            LambdaBackend.send_kinesis_message(None, "fn", "arn", "key", "1", "ZGF0YQ==", "shardId-0")
        )

    def test_the_kept_module_list_is_moto_s(self):
        self.assertEqual(list(moto.backends.list_of_moto_modules()), list(ORIGINAL["modules"]()))
        self.assertIn("kinesis", moto.backends.list_of_moto_modules())
        self.assertNotIn("amazonaws.com", moto.backends.list_of_moto_modules())


class GetMetricData(unittest.TestCase):
    def test_same_answers_as_moto(self):
        from datetime import datetime, timedelta, timezone

        from moto.core import DEFAULT_ACCOUNT_ID

        rng = random.Random(11)
        backend = CloudWatchBackend("us-east-1", DEFAULT_ACCOUNT_ID)
        t0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone.utc)
        names = ["Latency", "LatencyBucket", "KinesisToStoreLatency"]
        dims = [[], [{"Name": "RunId", "Value": "r1"}], [{"Name": "RunId", "Value": "r2"}],
                [{"Name": "RunId", "Value": "r1"}, {"Name": "Bucket", "Value": "b7"}]]
        for _ in range(400):
            datum = {"MetricName": rng.choice(names), "Dimensions": rng.choice(dims),
                     "Timestamp": t0 + timedelta(milliseconds=rng.randrange(0, 300_000)),
                     "Unit": rng.choice(["Milliseconds", "Count"])}
            if rng.random() < 0.2:
                datum["StatisticValues"] = {"SampleCount": 3.0, "Sum": 30.0, "Minimum": 5.0, "Maximum": 15.0}
            else:
                n = rng.randint(1, 4)
                datum["Values"] = [float(rng.randint(1, 900)) for _ in range(n)]
                datum["Counts"] = [float(rng.randint(1, 3)) for _ in range(n)]
            backend.put_metric_data(rng.choice(["NS", "Other"]), [datum])
        with_values = 0
        for trial in range(60):
            queries = []
            for i in range(rng.randint(1, 6)):
                metric = {"Namespace": rng.choice(["NS", "Other"]), "MetricName": rng.choice(names)}
                if rng.random() < 0.6:
                    metric["Dimensions"] = rng.choice(dims[1:])
                # Percentiles are the patch's own (moto answers none): see Percentiles.
                query = {"Id": f"q{i}", "MetricStat": {"Metric": metric, "Period": rng.choice([1, 7, 60, 300]),
                                                        "Stat": rng.choice(["SampleCount", "Sum", "Average", "Minimum", "Maximum"])}}
                if rng.random() < 0.3:
                    query["MetricStat"]["Unit"] = rng.choice(["Milliseconds", "Count"])
                if rng.random() < 0.2:
                    query["ReturnData"] = False
                if rng.random() < 0.2:
                    query["Label"] = "label"
                queries.append(query)
            start = t0 + timedelta(seconds=rng.randint(-30, 200), microseconds=rng.randint(0, 999_999))
            end = start + timedelta(seconds=rng.randint(1, 400))
            scan_by = rng.choice(["TimestampAscending", "TimestampDescending"])
            ours = CloudWatchBackend.get_metric_data(backend, queries, start, end, scan_by)
            # moto's own answer, each query over the data AWS would match: its namespace, its
            # name and exactly its dimensions.
            theirs = []
            for query in queries:
                metric = query["MetricStat"]["Metric"]
                wanted = sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
                exact = [d for d in backend.get_all_metrics()
                         if d.namespace == metric["Namespace"] and d.name == metric["MetricName"]
                         and sorted((x.name, x.value) for x in d.dimensions) == wanted]
                theirs += ORIGINAL["get_metric_data"](moto_server._OnlyThese(backend, exact), [query],
                                                      start, end, scan_by)
            self.assertEqual(ours, theirs, f"trial {trial}: {queries}")
            with_values += any(len(r["values"]) > 1 for r in ours)
        self.assertGreater(with_values, 30, "most trials find data in several periods")


class ExactDimensions(unittest.TestCase):
    def test_a_query_finds_only_data_with_exactly_its_dimensions(self):
        from datetime import datetime, timedelta, timezone

        from moto.core import DEFAULT_ACCOUNT_ID

        backend = CloudWatchBackend("us-east-1", DEFAULT_ACCOUNT_ID)
        t0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone.utc)
        run = [{"Name": "RunId", "Value": "r1"}]
        for dims, value in [(run, 100.0), (run + [{"Name": "Bucket", "Value": "b"}], 7.0), ([], 1.0)]:
            backend.put_metric_data("NS", [{"MetricName": "Latency", "Dimensions": dims, "Value": value,
                                            "Timestamp": t0, "Unit": "Milliseconds"}])
        end = t0 + timedelta(seconds=60)

        def statistics(dims):
            answer = CloudWatchBackend.get_metric_statistics(
                backend, "NS", "Latency", t0, end, 60, ["SampleCount", "Sum"], dims)
            return [(s.sample_count, s.sum) for s in answer]

        self.assertEqual(statistics([]), [(1.0, 1.0)], "without dimensions: only the undimensioned")
        self.assertEqual(statistics(run), [(1.0, 100.0)], "RunId alone, not RunId and Bucket")
        self.assertEqual(statistics([{"Name": "RunId", "Value": "r2"}]), [])

        def data(dims):
            query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "Latency",
                                                         "Dimensions": dims}, "Period": 60, "Stat": "Sum"}}
            return CloudWatchBackend.get_metric_data(backend, [query], t0, end)[0]["values"]

        self.assertEqual(data([]), [1.0])
        self.assertEqual(data(run), [100.0])
        self.assertEqual(data([{"Name": "Other", "Value": "x"}]), [])


class Percentiles(unittest.TestCase):
    def test_percentiles_of_values_published_with_counts(self):
        from datetime import datetime, timedelta, timezone

        from moto.core import DEFAULT_ACCOUNT_ID

        backend = CloudWatchBackend("us-east-1", DEFAULT_ACCOUNT_ID)
        t0 = datetime(2026, 12, 3, 10, 0, 0, tzinfo=timezone.utc)
        dims = [{"Name": "FunctionName", "Value": "f"}]
        # 1..100 ms, each once, in one datum; then one more second with 1000 ms, 5 times.
        backend.put_metric_data("AWS/Lambda", [{"MetricName": "Duration", "Dimensions": dims,
                                                "Values": [float(v) for v in range(1, 101)],
                                                "Timestamp": t0, "Unit": "Milliseconds"}])
        backend.put_metric_data("AWS/Lambda", [{"MetricName": "Duration", "Dimensions": dims,
                                                "Values": [1000.0], "Counts": [5.0],
                                                "Timestamp": t0 + timedelta(seconds=1)}])

        def stat(name, period, seconds=60):
            query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda",
                                                         "MetricName": "Duration",
                                                         "Dimensions": dims},
                                              "Period": period, "Stat": name}}
            return CloudWatchBackend.get_metric_data(
                backend, [query], t0, t0 + timedelta(seconds=seconds))[0]["values"]

        # 105 values: nearest ranks 53, 95 and 104.
        self.assertEqual(stat("p50", 60), [53.0])
        self.assertEqual(stat("p90", 60), [95.0])
        self.assertEqual(stat("p99", 60), [1000.0])
        self.assertEqual(stat("SampleCount", 60), [105.0], "moto's own statistics still answer")
        # Second by second: each second its own percentile.
        self.assertEqual(stat("p50", 1, seconds=2), [50.0, 1000.0])
        later = {"Id": "q", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Duration",
                                                     "Dimensions": dims}, "Period": 60, "Stat": "p99"}}
        self.assertEqual(CloudWatchBackend.get_metric_data(
            backend, [later], t0 + timedelta(seconds=60), t0 + timedelta(seconds=120))[0]["values"], [],
            "a window without data has none")


    def test_a_record_over_one_mib_is_refused_as_aws_refuses_it(self):
        import base64

        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.kinesis.models import KinesisBackend

        backend = KinesisBackend("us-east-1", DEFAULT_ACCOUNT_ID)
        backend.create_stream("s", shard_count=1)
        fits = base64.b64encode(b"x" * (1 << 20)).decode()
        backend.put_record(None, "s", "k", None, fits)
        too_large = base64.b64encode(b"x" * ((1 << 20) + 1)).decode()
        with self.assertRaises(moto_server.KinesisValidationException) as refused:
            backend.put_record(None, "s", "k", None, too_large)
        self.assertIn("less than or equal to 1048576", refused.exception.message)


class TemplateUrls(unittest.TestCase):
    def test_an_endpoint_url_is_read_path_style(self):
        import moto.cloudformation.responses as responses
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        s3.create_bucket("cdk-assets", "us-east-1")
        s3.put_object("cdk-assets", "t.json", b'{"Resources": {}}')
        for url in ["http://127.0.0.1:4599/cdk-assets/t.json",
                    "http://localhost:4566/cdk-assets/t.json",
                    "https://s3.amazonaws.com:4566/cdk-assets/t.json",
                    "https://s3.amazonaws.com/cdk-assets/t.json",
                    "https://cdk-assets.s3.amazonaws.com/t.json"]:
            self.assertEqual(responses.get_stack_from_s3_url(url, DEFAULT_ACCOUNT_ID, "aws"), '{"Resources": {}}', url)


class OneAtATime(unittest.TestCase):
    def test_requests_never_overlap_but_get_metric_data_may(self):
        import threading
        import time

        inside = []
        most = [0]
        guard = threading.Lock()

        def app(environ, start_response):
            with guard:
                inside.append(1)
                most[0] = max(most[0], len(inside))
            time.sleep(0.01)
            with guard:
                inside.pop()
            start_response("200 OK", [])
            return [b"a", b"b"]

        wrapped = moto_server.one_at_a_time(app, freeze_every=3)
        answers = []

        def call(target):
            answers.append(wrapped({"HTTP_X_AMZ_TARGET": target}, lambda *a: None))

        threads = [threading.Thread(target=call, args=("Kinesis_20131202.PutRecord",)) for _ in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        self.assertEqual(most[0], 1)
        self.assertEqual(answers, [[b"ab"]] * 8)
        import gc
        self.assertGreater(gc.get_freeze_count(), 0, "survivors frozen every 3 answers")
        gc.unfreeze()

        # Two unlocked calls meet inside the app: each waits for the other, which would time out
        # if the second were queued behind the first.
        met = threading.Barrier(2, timeout=30)

        def meeting(environ, start_response):
            met.wait()
            start_response("200 OK", [])
            return [b"ok"]

        unlocked = moto_server.one_at_a_time(meeting, freeze_every=3)
        answers.clear()

        def call_unlocked():
            answers.append(unlocked({"HTTP_X_AMZ_TARGET": moto_server.UNLOCKED_TARGETS[0]}, lambda *a: None))

        threads = [threading.Thread(target=call_unlocked) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        self.assertFalse(met.broken, "GetMetricData is not queued behind the lock")
        self.assertEqual(answers, [[b"ok"]] * 2)


class Server(unittest.TestCase):
    def concurrent_puts_are_all_kept(self, port, headers):
        """8 clients putting at once: every record gets its own sequence number and is kept."""
        import http.client
        import json
        import threading

        def call(connection, target, body):
            connection.request("POST", "/", body=json.dumps(body),
                               headers={**headers, "X-Amz-Target": f"Kinesis_20131202.{target}"})
            response = connection.getresponse()
            data = response.read()
            self.assertEqual(response.status, 200, data[:300])
            return json.loads(data or b"{}")

        setup = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        call(setup, "CreateStream", {"StreamName": "s", "ShardCount": 1})
        sequences = []

        def put(n):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(n):
                answer = call(connection, "PutRecord", {"StreamName": "s", "PartitionKey": f"k{i}", "Data": "ZGF0YQ=="})
                sequences.append(answer["SequenceNumber"])
            connection.close()

        threads = [threading.Thread(target=put, args=(150,)) for _ in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        self.assertEqual(len(set(sequences)), 8 * 150)
        iterator = call(setup, "GetShardIterator", {"StreamName": "s", "ShardId": "shardId-000000000000",
                                                    "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
        answer = call(setup, "GetRecords", {"ShardIterator": iterator, "Limit": 10000})
        setup.close()
        self.assertEqual(len(answer["Records"]), 8 * 150)

    def test_answers_on_one_kept_alive_connection(self):
        import http.client
        import socket
        import subprocess
        import time

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_server.py")
        server = subprocess.Popen([sys.executable, script, "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(1200):  # up to a minute on a loaded machine
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {
                "X-Amz-Target": "Kinesis_20131202.ListStreams",
                "Content-Type": "application/x-amz-json-1.1",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kinesis/"
                                 "aws4_request, SignedHeaders=host, Signature=0",
            }
            sockets = set()
            for _ in range(3):
                connection.request("POST", "/", body="{}", headers=headers)
                response = connection.getresponse()
                self.assertEqual(response.status, 200)
                self.assertIn("StreamNames", response.read().decode())
                self.assertNotEqual(response.getheader("Connection"), "close")
                sockets.add(id(connection.sock))
            self.assertEqual(len(sockets), 1, "one connection for all three")
            connection.close()
            self.concurrent_puts_are_all_kept(port, headers)
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"moto patches: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
