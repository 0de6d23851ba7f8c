#!/usr/bin/env python3
"""Deploys the CDK app to a moto server this test starts, asserts what was created through the AWS
API, destroys it, and stops moto (by PID).

Uses the real CDK CLI (`npx cdk`, from cdk/node_modules) and boto3 (installed with moto). Run by
`make test` as `.venv/bin/python cdk/test/deploy_moto.py`.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import boto3

CDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOTO = os.environ.get("MOTO_SERVER") or os.path.join(os.path.dirname(CDK_DIR), ".venv", "bin", "moto_server")
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
FUNCTIONS = ("upstream", "midstream", "downstream")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DeployToMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(MOTO):
            raise RuntimeError(f"{MOTO} not found: run `make test`, which installs moto into .venv")
        cls.port = free_port()
        cls.moto = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(cls.port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # moto's S3 needs `localhost` in the endpoint to use path-style addressing.
        cls.endpoint = f"http://localhost:{cls.port}"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/moto-api/", timeout=1)
                break
            except Exception:
                if time.time() > deadline or cls.moto.poll() is not None:
                    cls.moto.kill()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        cls.work = tempfile.mkdtemp(prefix="pipeline-deploy-")
        dist = os.path.join(cls.work, "dist")
        for fn in FUNCTIONS:
            os.makedirs(os.path.join(dist, fn))
            with open(os.path.join(dist, fn, "bootstrap"), "w") as f:
                f.write(f"#!/bin/sh\n# stand-in for {fn}: this test checks the infrastructure\n")
        cls.env = dict(
            os.environ,
            AWS_ENDPOINT_URL=cls.endpoint,
            AWS_ENDPOINT_URL_S3=cls.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            PIPELINE_TARGET="sandbox",
            LAMBDA_DIST_PATH=dist,
            CDK_DISABLE_VERSION_CHECK="1",
            CDK_DISABLE_CLI_TELEMETRY="true",
            CDK_OUTDIR=os.path.join(cls.work, "cdk.out"),
        )
        cls.env.pop("AWS_PROFILE", None)
        kw = dict(endpoint_url=cls.endpoint, region_name=REGION,
                  aws_access_key_id="testing", aws_secret_access_key="testing")
        cls.clients = {name: boto3.client(name, **kw)
                       for name in ("lambda", "kinesis", "dynamodb", "apigateway", "cloudformation", "cloudwatch")}
        cls.outputs_file = os.path.join(cls.work, "outputs.json")
        cls.cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}")
        cls.cdk("deploy", "--require-approval", "never", "--method=direct", "--outputs-file", cls.outputs_file)

    @classmethod
    def tearDownClass(cls):
        try:
            if hasattr(cls, "env"):
                cls.cdk("destroy", "--force")
                remaining = cls.clients["lambda"].list_functions()["Functions"]
                if remaining:
                    raise AssertionError(f"destroy left functions behind: {remaining}")
        finally:
            cls.moto.kill()
            cls.moto.wait()
            shutil.rmtree(getattr(cls, "work", ""), ignore_errors=True)

    @classmethod
    def cdk(cls, *args):
        result = subprocess.run(["npx", "cdk", *args, "--no-notices", "--output", cls.env["CDK_OUTDIR"]],
                                cwd=CDK_DIR, env=cls.env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"cdk {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def functions(self):
        found = {f["Description"].removeprefix("pipeline "): f
                 for f in self.clients["lambda"].list_functions()["Functions"]}
        self.assertEqual(sorted(found), sorted(FUNCTIONS))
        return found

    def table_name(self):
        return self.clients["dynamodb"].list_tables()["TableNames"][0]

    def test_outputs_have_the_samples_names(self):
        with open(self.outputs_file) as f:
            outputs = json.load(f)["PipelineStack"]
        self.assertEqual(outputs["KinesisStreamName"], "KinesisStream")
        self.assertEqual(outputs["DynamoDBTableName"], self.table_name())
        self.assertEqual(outputs["Environment"], "Sandbox")
        self.assertEqual(outputs["MetricNamespace"], "ServerlessDataProcessingPipeline/Latencies")
        self.assertIn("ApiGatewayMethodEndpoint", outputs)
        self.assertIn("FailedBatchesQueueUrl", outputs)

    def test_the_dashboard_is_deployed_and_names_the_deployed_resources(self):
        with open(self.outputs_file) as f:
            outputs = json.load(f)["PipelineStack"]
        name = outputs["DashboardName"]
        self.assertEqual(name, "PipelineStack-pipeline")
        body = json.loads(self.clients["cloudwatch"].get_dashboard(DashboardName=name)["DashboardBody"])
        titles = [w["properties"]["title"] for w in body["widgets"]]
        self.assertEqual(len(titles), 10, titles)
        text = json.dumps(body)
        for function in self.functions().values():
            self.assertIn(function["FunctionName"], text, "each function's metrics, by its real name")
            self.assertIn(function["FunctionName"], [outputs[f"{r}FunctionName"] for r in ("Upstream", "Midstream", "Downstream")])
        for metric in ("Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions", "IteratorAge",
                       "WriteProvisionedThroughputExceeded", "WriteThrottleEvents"):
            self.assertIn(f'"{metric}"', text)
        self.assertIn(self.table_name(), text)

    def test_three_functions_with_their_environment(self):
        functions = self.functions()
        for f in functions.values():
            self.assertEqual((f["Runtime"], f["Handler"], f["Architectures"]), ("provided.al2023", "bootstrap", ["x86_64"]))
        env = {name: f["Environment"]["Variables"] for name, f in functions.items()}
        self.assertEqual(env["upstream"], {"STREAM_NAME": "KinesisStream"})
        self.assertEqual(env["midstream"]["TABLE_NAME"], self.table_name())
        self.assertEqual(env["downstream"]["METRIC_NAMESPACE"], "ServerlessDataProcessingPipeline/Latencies")

    def test_two_event_source_mappings_on_the_right_sources(self):
        functions = self.functions()
        table = self.clients["dynamodb"].describe_table(TableName=self.table_name())["Table"]
        mappings = {m["FunctionArn"]: m for m in self.clients["lambda"].list_event_source_mappings()["EventSourceMappings"]}
        self.assertEqual(len(mappings), 2)
        kinesis = mappings[functions["midstream"]["FunctionArn"]]
        self.assertEqual(kinesis["EventSourceArn"], f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/KinesisStream")
        dynamo = mappings[functions["downstream"]["FunctionArn"]]
        self.assertEqual(dynamo["EventSourceArn"], table["LatestStreamArn"])
        for m in (kinesis, dynamo):
            self.assertEqual((m["BatchSize"], m["StartingPosition"]), (100, "TRIM_HORIZON"))
            self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])
            self.assertTrue(m["BisectBatchOnFunctionError"])
            queue = m["DestinationConfig"]["OnFailure"]["Destination"]
            self.assertRegex(queue, rf"^arn:aws:sqs:{REGION}:{ACCOUNT}:")

    def test_the_stream_and_the_table_with_its_stream(self):
        summary = self.clients["kinesis"].describe_stream_summary(StreamName="KinesisStream")["StreamDescriptionSummary"]
        self.assertEqual(summary["StreamStatus"], "ACTIVE")
        table = self.clients["dynamodb"].describe_table(TableName=self.table_name())["Table"]
        self.assertEqual(table["KeySchema"], [{"AttributeName": "id", "KeyType": "HASH"}])
        self.assertEqual(table["StreamSpecification"], {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})

    def test_post_on_the_root_is_a_proxy_integration_to_upstream(self):
        api = self.clients["apigateway"]
        rest = [r for r in api.get_rest_apis()["items"] if r["name"] == "PipelineApi"]
        self.assertEqual(len(rest), 1)
        root = [r for r in api.get_resources(restApiId=rest[0]["id"])["items"] if r["path"] == "/"][0]
        method = api.get_method(restApiId=rest[0]["id"], resourceId=root["id"], httpMethod="POST")
        integration = method["methodIntegration"]
        self.assertEqual(integration["type"], "AWS_PROXY")
        self.assertIn(self.functions()["upstream"]["FunctionArn"], integration["uri"])


if __name__ == "__main__":
    program = unittest.main(exit=False, verbosity=2)
    result = program.result
    failed = len(result.failures) + len(result.errors)
    print(f"deploy: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or not result.wasSuccessful() else 0)
