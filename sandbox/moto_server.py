"""moto's server, as the sandbox runs it. What changes is listed here; the rest is moto as it is.

1. The sandbox delivers stream records to functions itself (its pollers read the streams the way
   Lambda's event source mappings do). moto, when a DynamoDB table has a Lambda event source
   mapping, tries to invoke the function on its own (which needs Docker) and then empties the
   stream's records: the pollers would never see them. For a Kinesis stream with a mapping it
   tries the same on every PutRecord: it looks for Docker, fails, and moves on, which took a
   quarter of moto's time under load. Both deliveries are turned off.
2. moto's Kinesis shard finds its first and last sequence numbers by copying every key, and
   GetRecords scans the shard from its first record: PutRecord and GetRecords slow down as the
   shard fills, and a benchmark measures moto instead of the pipeline. Sequence numbers are
   consecutive integers (PutRecord assigns last + 1), so both become direct lookups, with the same
   results.
3. Every request asks which service it is for, and that lists moto's package directory from disk
   (a listdir and a stat per service) to see whether the host names a service: the list is read
   once and kept. moto's per-request access log (to a stderr nobody reads) is off.
4. moto's backends are not safe for concurrent calls (its Kinesis shard says so: two PutRecord
   calls at once can get the same sequence number, and one record silently replaces the other;
   a 60-second benchmark lost 3 of 12,511 records that way). Requests are answered one at a time
   (one lock around the app; GetMetricData, read-only and slow on a big run, is let through). The
   Python code held the GIL anyway; parsing and I/O still overlap.
5. `cdklocal` hands CloudFormation template URLs on the endpoint it was given
   (`http://127.0.0.1:4599/<bucket>/<key>`), which moto reads as a bucket named `127`: such URLs
   are read path-style, so `cdklocal deploy` works against the edge.
6. Every 1000 answers, what has survived is frozen out of the garbage collector's full
   collections (see `one_at_a_time`): they paused moto for 130-290 ms every few seconds.
7. GetMetricData compares every query with every stored datum once per period (and moto stores
   one datum per value counted: 90,000 after a one-minute bench), so the collector's export took
   seconds per call. Each query is now answered from the datums of its own metric, grouped by
   period, by moto's own code for each period (same answers, checked on random data).
8. CloudWatch matches a metric by its exact dimension set, as AWS does: a query (GetMetricData or
   GetMetricStatistics) without dimensions finds only data published without dimensions, and one
   with dimensions only data with exactly those. moto matched a subset (so a query without
   dimensions summed every run's RunId-dimensioned data), which AWS never does.
9. A Kinesis PutRecord of more than 1 MiB of data is refused with AWS's ValidationException
   (moto checked the limit for PutRecords only).
10. GetMetricData answers percentile statistics (`p50`, `p99`, `p99.9`) as CloudWatch does, from
   the values published one by one (`Value`, or `Values` with `Counts`): moto answered them
   with nothing. The sandbox publishes Lambda's `Duration` that way, and the collector reads its
   `p99` with the same query it sends to AWS. The nearest rank is returned (CloudWatch's is an
   estimate within a few percent).

11. A function's code in S3 is not fetched to validate it (`VALIDATE_LAMBDA_S3=false`): the
   sandbox's hot-reload functions name a bucket that holds no code, as LocalStack's do.

moto listens on a socket the sandbox bound and hands over (`--fd`), so no other process can
take the port between the sandbox choosing it and moto listening.

And it is served by waitress (a fixed pool of threads, keep-alive connections) instead of
werkzeug's development server, which closes every connection and starts a thread for each.
SANDBOX_MOTO_HTTP=werkzeug serves it the way `moto_server` does, for comparison (with the lock).
"""

import logging
import math
import os
import re
import sys
import threading
from datetime import timedelta

import moto.backends
import moto.cloudformation.responses
from moto.cloudwatch.models import CloudWatchBackend, Dimension
from moto.awslambda.models import LambdaBackend
from base64 import b64decode

from moto.core.exceptions import JsonRESTError
from moto.kinesis.models import KinesisBackend, Shard


class KinesisValidationException(JsonRESTError):
    def __init__(self, message):
        super().__init__(error_type="ValidationException", message=message)


def _leave_stream_records_to_the_sandbox(self, *args, **kwargs):
    return None


LambdaBackend.send_dynamodb_items = _leave_stream_records_to_the_sandbox
LambdaBackend.send_kinesis_message = _leave_stream_records_to_the_sandbox

_MOTO_MODULES = tuple(moto.backends.list_of_moto_modules())


def _list_of_moto_modules():
    return _MOTO_MODULES


moto.backends.list_of_moto_modules = _list_of_moto_modules
logging.getLogger("werkzeug").setLevel(logging.ERROR)

_get_stack_from_s3_url = moto.cloudformation.responses.get_stack_from_s3_url


def _get_stack_from_s3_url_path_style(template_url, account_id, partition):
    from urllib.parse import urlparse

    parts = urlparse(template_url)
    host = parts.hostname or ""
    if parts.port is not None or not host.endswith("amazonaws.com"):
        # An endpoint's URL (the edge's, LocalStack's): the bucket is the path's first part.
        template_url = f"https://s3.amazonaws.com{parts.path}"
    return _get_stack_from_s3_url(template_url, account_id=account_id, partition=partition)


moto.cloudformation.responses.get_stack_from_s3_url = _get_stack_from_s3_url_path_style


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

_get_metric_data = CloudWatchBackend.get_metric_data

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def _percentile(stat, data):
    """CloudWatch's `pNN` of the datums' values (nearest rank); None without values."""
    match = _PERCENTILE.match(stat)
    values = sorted(d.value for d in data if hasattr(d, "value"))
    if not match or not values:
        return None
    rank = math.ceil(float(match.group(1)) / 100 * len(values))
    return values[min(max(rank, 1), len(values)) - 1]


class _OnlyThese:
    """A CloudWatch backend whose stored metrics are the given ones."""

    def __init__(self, backend, metrics):
        self._backend = backend
        self._metrics = metrics

    def get_all_metrics(self):
        return self._metrics

    def __getattr__(self, name):
        return getattr(self._backend, name)


def _get_metric_data_by_metric(self, queries, start_time, end_time, scan_by="TimestampAscending"):
    start = start_time.replace(microsecond=0)
    end = end_time.replace(microsecond=0)
    if not queries or start >= end or any("MetricStat" not in q for q in queries):
        return _get_metric_data(self, queries, start_time, end_time, scan_by)
    by_name = {}
    for datum in self.get_all_metrics():
        if start <= datum.timestamp < end:
            by_name.setdefault(datum.name, []).append(datum)
    subsets = {}
    results = []
    for query in queries:
        stat = query["MetricStat"]
        metric = stat["Metric"]
        name = metric["MetricName"]
        dimensions = [Dimension(name=d["Name"], value=d["Value"]) for d in metric.get("Dimensions", [])]
        key = (metric["Namespace"], name, tuple((d.name, d.value) for d in dimensions))
        if key not in subsets:
            named = by_name.get(name, [])
            # AWS's match: the namespace, the name and exactly these dimensions (none: none).
            wanted = sorted(dimensions)
            subsets[key] = [d for d in named
                            if d.namespace == metric["Namespace"] and sorted(d.dimensions) == wanted]
        delta = timedelta(seconds=int(stat["Period"]))
        periods = {}
        for datum in subsets[key]:
            periods.setdefault((datum.timestamp - start) // delta, []).append(datum)
        answer = _get_metric_data(_OnlyThese(self, []), [query], start, end, scan_by)
        values, timestamps = [], []
        for index in sorted(periods):
            period_start = start + index * delta
            if _PERCENTILE.match(stat["Stat"]):
                value = _percentile(stat["Stat"], periods[index])
                if value is not None:
                    values.append(value)
                    timestamps.append(period_start)
                continue
            one = _get_metric_data(_OnlyThese(self, periods[index]), [dict(query, ReturnData=True)],
                                   period_start, period_start + delta, "TimestampAscending")[0]
            values += one["values"]
            timestamps += one["timestamps"]
        if scan_by == "TimestampDescending":
            values.reverse()
            timestamps.reverse()
        for result in answer:
            result["values"] = values
            result["timestamps"] = timestamps
        results += answer
    return results


CloudWatchBackend.get_metric_data = _get_metric_data_by_metric

_get_metric_statistics = CloudWatchBackend.get_metric_statistics


def _get_metric_statistics_exact(self, namespace, metric_name, start_time, end_time, period, stats,
                                 dimensions, unit=None):
    wanted = sorted((d["Name"], d.get("Value")) for d in dimensions or [])
    exact = [md for md in self.get_all_metrics()
             if md.namespace == namespace and md.name == metric_name
             and sorted((d.name, d.value) for d in md.dimensions) == wanted]
    return _get_metric_statistics(_OnlyThese(self, exact), namespace, metric_name, start_time,
                                  end_time, period, stats, [], unit)


CloudWatchBackend.get_metric_statistics = _get_metric_statistics_exact

MAX_KINESIS_RECORD_BYTES = 1 << 20
_kinesis_put_record = KinesisBackend.put_record


def _kinesis_put_record_within_limit(self, stream_arn, stream_name, partition_key,
                                     explicit_hash_key, data):
    if len(b64decode(data or "")) > MAX_KINESIS_RECORD_BYTES:
        raise KinesisValidationException(
            "1 validation error detected: Value at 'data' failed to satisfy constraint: Member "
            f"must have length less than or equal to {MAX_KINESIS_RECORD_BYTES}")
    return _kinesis_put_record(self, stream_arn, stream_name, partition_key, explicit_hash_key,
                               data)


KinesisBackend.put_record = _kinesis_put_record_within_limit

UNLOCKED_TARGETS = ("GraniteServiceVersion20100801.GetMetricData",)


FREEZE_EVERY = 1000


def one_at_a_time(app, lock=None, freeze_every=FREEZE_EVERY):
    """The WSGI app, answering one request at a time (the whole answer is built under the lock).

    Every `freeze_every` answers, what has survived the young collections is frozen (`gc.freeze`):
    moto keeps every record, item and datum, and a full collection walking all of them stopped
    everything for 130-240 ms every few seconds of a benchmark, growing with the run. Frozen
    objects are never walked again; garbage among them is still freed by reference counting
    (only cycles that die after being frozen would stay). SANDBOX_MOTO_FREEZE_EVERY=0 turns it
    off, for comparison."""
    import gc

    lock = lock or threading.Lock()
    answered = [0]

    def serialized(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") in UNLOCKED_TARGETS:
            return app(environ, start_response)
        with lock:
            answer = app(environ, start_response)
            try:
                return [b"".join(answer)]
            finally:
                close = getattr(answer, "close", None)
                if close:
                    close()
                answered[0] += 1
                if freeze_every and answered[0] % freeze_every == 0:
                    gc.collect(1)
                    gc.freeze()

    return serialized


def serve(argv):
    """moto's app (as `moto_server` builds it), one request at a time, behind waitress."""
    import argparse

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    # A listening socket handed over by the sandbox (bound to the port before moto starts, so
    # that no other process can take the port in between).
    parser.add_argument("--fd", type=int)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    # Hot-reload functions name code in a bucket that holds none (LocalStack's `hot-reload`):
    # moto must not insist on fetching it.
    os.environ["VALIDATE_LAMBDA_S3"] = "false"
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    app = one_at_a_time(app, freeze_every=int(os.environ.get("SANDBOX_MOTO_FREEZE_EVERY", FREEZE_EVERY)))
    if os.environ.get("SANDBOX_MOTO_HTTP") == "werkzeug":
        from werkzeug.serving import run_simple

        run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler,
                   fd=args.fd)
        return
    import socket

    import waitress

    logging.getLogger("waitress").setLevel(logging.ERROR)
    where = (dict(sockets=[socket.socket(fileno=args.fd)]) if args.fd is not None
             else dict(host=args.host, port=args.port))
    waitress.serve(app, threads=8, connection_limit=1000, channel_timeout=300, ident="moto",
                   **where)


if __name__ == "__main__":
    serve(sys.argv[1:])
