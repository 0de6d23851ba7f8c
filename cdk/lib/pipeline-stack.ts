/**
 * The pipeline: API Gateway (REST, stage prod) -> upstream -> Kinesis -> midstream -> DynamoDB
 * -> DynamoDB stream -> downstream -> CloudWatch metrics. One stack for AWS, LocalStack and the
 * sandbox; what differs is said in PipelineConfig.
 */
import * as fs from 'fs';
import * as path from 'path';

import * as cdk from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, KinesisEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

import { FunctionName, PipelineConfig } from './config';
import { PipelineDashboard } from './dashboard';

/** LocalStack's magic bucket: code served from the local path in the key, live on rebuild. */
export const HOT_RELOAD_BUCKET = 'hot-reload';

/** Stream-consumer settings shared by both event sources (each also records the batches it
 * gives up in the failed-batches queue). */
const STREAM_CONSUMER = {
  startingPosition: lambda.StartingPosition.TRIM_HORIZON,
  batchSize: 100,
  bisectBatchOnError: true,
  retryAttempts: 10,
  maxRecordAge: cdk.Duration.hours(1),
  reportBatchItemFailures: true,
};

export interface PipelineStackProps extends cdk.StackProps {
  readonly config: PipelineConfig;
}

export class PipelineStack extends cdk.Stack {
  readonly api: apigateway.RestApi;
  readonly stream: kinesis.Stream;
  readonly table: dynamodb.Table;
  /** Where both mappings record a batch they give up (after the retries or the maximum age). */
  readonly failedBatches: sqs.Queue;
  readonly functions: Record<FunctionName, lambda.Function>;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.stream = new kinesis.Stream(this, 'KinesisStream', {
      streamName: config.streamName,
      shardCount: config.shards,
      retentionPeriod: cdk.Duration.hours(24),
      // AWS-managed encryption on AWS; the emulators keep it plain.
      encryption: config.target === 'AWS' ? kinesis.StreamEncryption.MANAGED : kinesis.StreamEncryption.UNENCRYPTED,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });

    this.table = new dynamodb.Table(this, 'DynamoDBTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });

    this.failedBatches = new sqs.Queue(this, 'FailedBatches', {
      retentionPeriod: cdk.Duration.days(14),
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });

    const vpc = config.useVpc ? this.vpc() : undefined;
    const make = (name: FunctionName, timeout: number, environment: Record<string, string>) =>
      new lambda.Function(this, capitalize(name), {
        description: `pipeline ${name}`,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        handler: 'bootstrap',
        architecture: config.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
        code: code(this, config, name),
        memorySize: config.memory,
        timeout: cdk.Duration.seconds(timeout),
        environment,
        logGroup: new logs.LogGroup(this, `${capitalize(name)}Logs`, {
          retention: logs.RetentionDays.ONE_WEEK,
          removalPolicy: cdk.RemovalPolicy.DESTROY,
        }),
        ...(vpc ? { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } } : {}),
      });
    this.functions = {
      upstream: make('upstream', 10, { STREAM_NAME: this.stream.streamName }),
      midstream: make('midstream', 60, {
        TABLE_NAME: this.table.tableName,
        METRIC_NAMESPACE: config.metricNamespace,
      }),
      downstream: make('downstream', 60, { METRIC_NAMESPACE: config.metricNamespace }),
    };
    const { upstream, midstream, downstream } = this.functions;

    // Least privilege: each function gets the one write it makes.
    this.stream.grant(upstream, 'kinesis:PutRecord');
    this.table.grant(midstream, 'dynamodb:BatchWriteItem');
    const putMetrics = new iam.PolicyStatement({
      actions: ['cloudwatch:PutMetricData'],
      // PutMetricData has no resource-level permissions: the condition pins the namespace.
      resources: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': config.metricNamespace } },
    });
    midstream.addToRolePolicy(putMetrics);
    downstream.addToRolePolicy(putMetrics);

    const onFailure = new SqsDlq(this.failedBatches);
    midstream.addEventSource(
      new KinesisEventSource(this.stream, { ...STREAM_CONSUMER, parallelizationFactor: 1, onFailure }),
    );
    downstream.addEventSource(new DynamoEventSource(this.table, { ...STREAM_CONSUMER, onFailure }));

    this.api = new apigateway.RestApi(this, 'Api', {
      restApiName: 'PipelineApi',
      description: 'POST a request into the pipeline',
      cloudWatchRole: false,
      deployOptions: { stageName: 'prod' },
    });
    this.api.root.addMethod('POST', new apigateway.LambdaIntegration(upstream, { proxy: true }));

    new cdk.CfnOutput(this, 'ApiGatewayMethodEndpoint', { value: this.api.url, description: 'POST here' });
    new cdk.CfnOutput(this, 'KinesisStreamName', { value: this.stream.streamName });
    new cdk.CfnOutput(this, 'ApiName', {
      value: this.api.restApiName,
      description: "API Gateway's metrics are by ApiName",
    });
    new cdk.CfnOutput(this, 'DynamoDBTableName', { value: this.table.tableName });
    new cdk.CfnOutput(this, 'FailedBatchesQueueUrl', {
      value: this.failedBatches.queueUrl,
      description: 'the records of batches the event source mappings gave up',
    });
    new cdk.CfnOutput(this, 'Environment', { value: config.target });
    const { dashboard } = new PipelineDashboard(this, 'Monitoring', {
      namespace: config.metricNamespace,
      functions: this.functions,
      stream: this.stream,
      table: this.table,
    });
    new cdk.CfnOutput(this, 'DashboardName', {
      value: dashboard.dashboardName,
      description: 'the CloudWatch dashboard of the pipeline',
    });
    // Lambda's own metrics (AWS/Lambda) are by function name: the collector reads these.
    for (const [name, fn] of Object.entries(this.functions)) {
      new cdk.CfnOutput(this, `${capitalize(name)}FunctionName`, { value: fn.functionName });
    }
    if (config.loadgenWorker) {
      const worker = this.loadgenWorker(config);
      new cdk.CfnOutput(this, 'LoadgenWorkerFunctionName', {
        value: worker.functionName,
        description: 'loadgen --lambda N invokes this',
      });
    }
    new cdk.CfnOutput(this, 'MetricNamespace', { value: config.metricNamespace });
  }

  /** loadgen as a Lambda function (`loadgen --lambda N`): 1769 MB is one full vCPU; 15 minutes
   * is Lambda's longest run. It calls only the API, over the internet, so it needs no grant. */
  private loadgenWorker(config: PipelineConfig): lambda.Function {
    const dir = path.join(config.distPath, 'loadgen-worker');
    if (!fs.existsSync(path.join(dir, 'bootstrap'))) {
      throw new Error(
        `${path.join(dir, 'bootstrap')} not found: run \`make lambdas\`, which builds the loadgen worker too`,
      );
    }
    return new lambda.Function(this, 'LoadgenWorker', {
      description: 'loadgen worker: one segment of a distributed load',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      handler: 'bootstrap',
      architecture: config.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      code: lambda.Code.fromAsset(dir),
      memorySize: 1769,
      timeout: cdk.Duration.minutes(15),
      logGroup: new logs.LogGroup(this, 'LoadgenWorkerLogs', {
        retention: logs.RetentionDays.ONE_WEEK,
        removalPolicy: cdk.RemovalPolicy.DESTROY,
      }),
    });
  }

  /** The AWS sample's VPC: isolated subnets, a DynamoDB gateway endpoint, and interface endpoints
   * for Kinesis and (so that the functions can publish metrics) CloudWatch. */
  private vpc(): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'functions', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    });
    vpc.addGatewayEndpoint('DynamoDbEndpoint', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });
    vpc.addInterfaceEndpoint('KinesisEndpoint', { service: ec2.InterfaceVpcEndpointAwsService.KINESIS_STREAMS });
    vpc.addInterfaceEndpoint('CloudWatchEndpoint', {
      service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    });
    return vpc;
  }
}

/** The function's code: LocalStack's hot-reload bucket, or the prebuilt `dist/<fn>` as an asset. */
function code(scope: Construct, config: PipelineConfig, name: FunctionName): lambda.Code {
  const dir = path.join(config.distPath, name);
  if (config.hotDeploy) {
    const bucket = s3.Bucket.fromBucketName(scope, `${capitalize(name)}HotReload`, HOT_RELOAD_BUCKET);
    return lambda.Code.fromBucket(bucket, dir);
  }
  const bootstrap = path.join(dir, 'bootstrap');
  if (!fs.existsSync(bootstrap)) {
    throw new Error(
      `${bootstrap} not found: run \`make lambdas\` to build the functions ` +
        '(or point LAMBDA_DIST_PATH at a folder holding <fn>/bootstrap)',
    );
  }
  return lambda.Code.fromAsset(dir);
}

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
