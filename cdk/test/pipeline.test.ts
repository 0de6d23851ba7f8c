import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';

import { configFromEnv, DEFAULT_NAMESPACE, FUNCTIONS, PipelineConfig } from '../lib/config';
import { HOT_RELOAD_BUCKET, PipelineStack } from '../lib/pipeline-stack';

/** Every folder the tests create (dist folders, each synth's cloud assembly), removed at the end. */
const SCRATCH = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-test-'));
afterAll(() => fs.rmSync(SCRATCH, { recursive: true, force: true }));

/** A dist folder with a stand-in `bootstrap` per function (the stack only packages it). */
function fakeDist(): string {
  const dir = fs.mkdtempSync(path.join(SCRATCH, 'dist-'));
  for (const fn of [...FUNCTIONS, 'loadgen-worker']) {
    fs.mkdirSync(path.join(dir, fn));
    fs.writeFileSync(path.join(dir, fn, 'bootstrap'), '#!/bin/sh\n', { mode: 0o755 });
  }
  return dir;
}

const DIST = fakeDist();

function synth(env: Record<string, string> = {}): { template: Template; config: PipelineConfig } {
  const config = configFromEnv({ LAMBDA_DIST_PATH: DIST, ...env }, '/repo');
  const app = new cdk.App({ outdir: fs.mkdtempSync(path.join(SCRATCH, 'cdk.out-')) });
  const stack = new PipelineStack(app, 'PipelineStack', {
    config,
    synthesizer:
      config.target === 'Sandbox' ? new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }) : undefined,
  });
  return { template: Template.fromStack(stack), config };
}

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown; Effect: string };

function statements(template: Template): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement as Statement[]);
}

function functionLogicalIds(template: Template): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const [id, resource] of Object.entries(template.findResources('AWS::Lambda::Function'))) {
    ids[(resource as any).Properties.Description.replace('pipeline ', '')] = id;
  }
  return ids;
}

describe('default (AWS)', () => {
  const { template } = synth();

  test('a Kinesis stream named KinesisStream', () => {
    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      Name: 'KinesisStream',
      ShardCount: 1,
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
  });

  test('an on-demand table keyed by id with a new-and-old-images stream', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
  });

  test('three provided.al2023 functions with their environment from construct references', () => {
    template.resourceCountIs('AWS::Lambda::Function', 3);
    const ids = functionLogicalIds(template);
    expect(Object.keys(ids).sort()).toEqual(['downstream', 'midstream', 'upstream']);
    const common = { Runtime: 'provided.al2023', Handler: 'bootstrap', Architectures: ['x86_64'] };
    template.hasResourceProperties('AWS::Lambda::Function', {
      ...common,
      Description: 'pipeline upstream',
      Environment: { Variables: { STREAM_NAME: { Ref: Match.stringLikeRegexp('^KinesisStream') } } },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      ...common,
      Description: 'pipeline midstream',
      Environment: {
        Variables: { TABLE_NAME: { Ref: Match.stringLikeRegexp('^DynamoDBTable') }, METRIC_NAMESPACE: DEFAULT_NAMESPACE },
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      ...common,
      Description: 'pipeline downstream',
      Environment: { Variables: { METRIC_NAMESPACE: DEFAULT_NAMESPACE } },
    });
  });

  test('each function logs to its own group with a retention', () => {
    template.resourceCountIs('AWS::Logs::LogGroup', 3);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) {
      expect((fn as any).Properties.LoggingConfig.LogGroup).toEqual({ Ref: expect.stringMatching(/Logs/) });
    }
  });

  test('POST on the API root is proxied to upstream, stage prod', () => {
    const ids = functionLogicalIds(template);
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      ResourceId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Api'), 'RootResourceId'] },
      Integration: {
        Type: 'AWS_PROXY',
        IntegrationHttpMethod: 'POST',
        Uri: Match.objectLike({
          'Fn::Join': Match.arrayWith([Match.arrayWith([{ 'Fn::GetAtt': [ids.upstream, 'Arn'] }])]),
        }),
      },
    });
    template.hasResourceProperties('AWS::ApiGateway::Stage', { StageName: 'prod' });
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  test('event sources: Kinesis to midstream, the table stream to downstream, retried and bisected', () => {
    const ids = functionLogicalIds(template);
    const consumer = {
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 3600,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      // A batch given up is recorded in the failed-batches queue, not only dropped.
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FailedBatches'), 'Arn'] } },
      },
    };
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    expect(statements(template).flatMap((s) => s.Action)).toContain('sqs:SendMessage');
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ...consumer,
      FunctionName: { Ref: ids.midstream },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^KinesisStream'), 'Arn'] },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ...consumer,
      FunctionName: { Ref: ids.downstream },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DynamoDBTable'), 'StreamArn'] },
    });
  });

  test('grants are least privilege: no wildcard action, PutMetricData pinned to the namespace', () => {
    const all = statements(template);
    const actions = all.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(actions.filter((a) => a.includes('*'))).toEqual([]);
    expect(actions).toContain('kinesis:PutRecord');
    expect(actions).toContain('dynamodb:BatchWriteItem');
    expect(actions).not.toContain('dynamodb:PutItem');
    expect(actions).not.toContain('kinesis:PutRecords');
    for (const s of all.filter((s) => s.Resource === '*')) {
      const list = Array.isArray(s.Action) ? s.Action : [s.Action];
      if (list.includes('cloudwatch:PutMetricData')) {
        expect(list).toEqual(['cloudwatch:PutMetricData']);
        expect(s.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': DEFAULT_NAMESPACE } });
      } else {
        // The one AWS action without resource-level permissions a stream consumer needs.
        expect(list).toEqual(['dynamodb:ListStreams']);
      }
    }
    const putMetrics = all.filter((s) => JSON.stringify(s.Action).includes('PutMetricData'));
    expect(putMetrics).toHaveLength(2);
  });

  test('outputs have the AWS sample\'s names, and say the environment', () => {
    template.hasOutput('ApiGatewayMethodEndpoint', {});
    template.hasOutput('KinesisStreamName', { Value: { Ref: Match.stringLikeRegexp('^KinesisStream') } });
    template.hasOutput('DynamoDBTableName', { Value: { Ref: Match.stringLikeRegexp('^DynamoDBTable') } });
    template.hasOutput('Environment', { Value: 'AWS' });
    template.hasOutput('MetricNamespace', { Value: DEFAULT_NAMESPACE });
    // API Gateway's metrics (4XXError, 5XXError) are by the API's name.
    const apis = template.findResources('AWS::ApiGateway::RestApi');
    const apiName = (Object.values(apis)[0] as any).Properties.Name;
    template.hasOutput('ApiName', { Value: apiName });
    for (const name of ['Upstream', 'Midstream', 'Downstream']) {
      template.hasOutput(`${name}FunctionName`, { Value: { Ref: Match.stringLikeRegexp(`^${name}`) } });
    }
  });

  test('a dashboard of the pipeline, its name an output', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'PipelineStack-pipeline' });
    template.hasOutput('DashboardName', {});
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as any[];
    // The body is a Fn::Join of text and the resources' names: the text says what it shows.
    const parts: unknown[] = dashboard.Properties.DashboardBody['Fn::Join'][1];
    const text = parts.filter((p) => typeof p === 'string').join('');
    const body = JSON.stringify(parts);
    for (const title of [
      'End-to-end latency',
      'Latency per hop',
      'Loops completed per second',
      'Invocations',
      'Errors',
      'Throttles',
      'Concurrent executions',
      'Duration p50 and p99',
      'Iterator age',
      'Kinesis and DynamoDB throttles',
    ]) {
      expect(text).toContain(title);
    }
    for (const metric of [
      'IteratorAge',
      'ConcurrentExecutions',
      'WriteProvisionedThroughputExceeded',
      'ReadProvisionedThroughputExceeded',
      'WriteThrottleEvents',
    ]) {
      expect(text).toContain(`"${metric}"`);
    }
    expect(text).toContain(`SEARCH('{\\"${DEFAULT_NAMESPACE}\\",RunId} MetricName=\\"Latency\\"', 'p99', 60)`);
    for (const [name, id] of Object.entries(functionLogicalIds(template))) {
      expect(body).toContain(id);
      expect(text).toContain(`"label":"${name}"`);
    }
  });

  test('code comes from the prebuilt dist folder as an asset, and no VPC', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Code: { S3Bucket: { 'Fn::Sub': Match.stringLikeRegexp('cdk-') }, S3Key: Match.stringLikeRegexp('\\.zip$') },
    });
    template.resourceCountIs('AWS::EC2::VPC', 0);
    expect(template.toJSON().Rules?.CheckBootstrapVersion).toBeDefined();
  });
});

describe('USE_LOCALSTACK=true', () => {
  const { template } = synth({ USE_LOCALSTACK: 'true' });
  test('says LocalStack and keeps the stream unencrypted', () => {
    template.hasOutput('Environment', { Value: 'LocalStack' });
    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamEncryption: Match.absent() });
  });
});

describe('HOT_DEPLOY=true', () => {
  const { template } = synth({ USE_LOCALSTACK: 'true', HOT_DEPLOY: 'true', LAMBDA_DIST_PATH: '/work/dist' });
  test("code comes from LocalStack's hot-reload bucket at LAMBDA_DIST_PATH/<fn>", () => {
    for (const fn of FUNCTIONS) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: `pipeline ${fn}`,
        Code: { S3Bucket: HOT_RELOAD_BUCKET, S3Key: `/work/dist/${fn}` },
      });
    }
  });
});

describe('USE_VPC=true', () => {
  const { template } = synth({ USE_VPC: 'true' });
  test('functions run in the VPC with DynamoDB, Kinesis and CloudWatch endpoints', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.dynamodb']] },
    });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.kinesis-streams']] },
    });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.monitoring']] },
    });
    template.allResourcesProperties('AWS::Lambda::Function', { VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }) });
  });
});

describe('PIPELINE_TARGET=sandbox, LAMBDA_ARCH=arm64', () => {
  const { template } = synth({ PIPELINE_TARGET: 'sandbox', LAMBDA_ARCH: 'arm64' });
  test('no bootstrap version rule, arm64 functions, says Sandbox', () => {
    expect(template.toJSON().Rules?.CheckBootstrapVersion).toBeUndefined();
    expect(template.toJSON().Parameters?.BootstrapVersion).toBeUndefined();
    template.allResourcesProperties('AWS::Lambda::Function', { Architectures: ['arm64'] });
    template.hasOutput('Environment', { Value: 'Sandbox' });
  });
});

describe('configuration', () => {
  test('a missing binary stops synth and says to run make lambdas', () => {
    const empty = fs.mkdtempSync(path.join(SCRATCH, 'empty-'));
    expect(() => synth({ LAMBDA_DIST_PATH: empty })).toThrow(/upstream\/bootstrap not found: run `make lambdas`/);
  });

  test('bad values are refused with the variable named', () => {
    expect(() => configFromEnv({ LAMBDA_ARCH: 'sparc' }, '/repo')).toThrow('LAMBDA_ARCH=sparc must be x86_64 or arm64');
    expect(() => configFromEnv({ USE_VPC: 'maybe' }, '/repo')).toThrow('USE_VPC=maybe is not a boolean');
    expect(() => configFromEnv({ PIPELINE_TARGET: 'gcp' }, '/repo')).toThrow('must be aws, localstack or sandbox');
    for (const bad of ['0', '-1', '1.5', 'two', '501', '']) {
      expect(() => configFromEnv({}, '/repo', { shards: bad })).toThrow(`shards=${bad} must be a whole number`);
    }
    expect(() => configFromEnv({ SHARDS: 'x' }, '/repo')).toThrow('SHARDS=x must be a whole number');
    for (const bad of ['127', '10241', '512.5', 'big', '']) {
      expect(() => configFromEnv({}, '/repo', { memory: bad })).toThrow(`memory=${bad} must be a whole number of MB`);
    }
    expect(() => configFromEnv({ MEMORY: '64' }, '/repo')).toThrow('MEMORY=64 must be a whole number of MB from 128 to 10240');
  });

  test('the memory size: context memory, else MEMORY, else 256, on all three functions', () => {
    expect(configFromEnv({ MEMORY: '512' }, '/repo', { memory: '1769' }).memory).toBe(1769);
    const { template } = synth({ MEMORY: '512' });
    const sizes = Object.values(template.findResources('AWS::Lambda::Function')).map(
      (f) => (f as { Properties: { MemorySize: number } }).Properties.MemorySize,
    );
    expect(sizes).toEqual([512, 512, 512]);
  });

  test('the shard count: context shards, else SHARDS, else 1', () => {
    expect(configFromEnv({ SHARDS: '3' }, '/repo', { shards: '4' }).shards).toBe(4);
    expect(configFromEnv({ SHARDS: '3' }, '/repo').shards).toBe(3);
    const { template } = synth({ SHARDS: '4' });
    template.hasResourceProperties('AWS::Kinesis::Stream', { ShardCount: 4 });
  });

  test('defaults: dist under the repository, x86_64, KinesisStream', () => {
    const config = configFromEnv({}, '/repo');
    expect(config).toEqual({
      target: 'AWS',
      hotDeploy: false,
      distPath: '/repo/dist',
      useVpc: false,
      architecture: 'x86_64',
      streamName: 'KinesisStream',
      metricNamespace: DEFAULT_NAMESPACE,
      loadgenWorker: false,
      shards: 1,
      memory: 256,
    });
  });
});

describe('LOADGEN_WORKER=true', () => {
  const { template } = synth({ LOADGEN_WORKER: 'true' });
  test('a fourth function, the loadgen worker: one vCPU, 15 minutes, its name as an output', () => {
    template.resourceCountIs('AWS::Lambda::Function', 4);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'loadgen worker: one segment of a distributed load',
      MemorySize: 1769,
      Timeout: 900,
      Runtime: 'provided.al2023',
    });
    template.hasOutput('LoadgenWorkerFunctionName', { Value: { Ref: Match.stringLikeRegexp('^LoadgenWorker') } });
  });
  test('without it, no worker', () => {
    synth().template.resourceCountIs('AWS::Lambda::Function', 3);
  });
});
