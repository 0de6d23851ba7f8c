/**
 * The pipeline's CloudWatch dashboard: what an AWS user opens first. The pipeline's own latency
 * (end to end and per hop, CloudWatch's percentiles across runs, found by SEARCH on the RunId
 * dimension) and loops per second; each function's invocations, errors, throttles, duration and
 * concurrency (AWS/Lambda); both mappings' iterator age; Kinesis and DynamoDB throttles.
 */
import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

import { FunctionName } from './config';

/** The pipeline's per-hop latency metrics, in the order a request meets them. */
export const HOPS = ['ClientToKinesisLatency', 'KinesisToStoreLatency', 'StoreToDownstreamLatency'];

export interface DashboardProps {
  readonly namespace: string;
  readonly functions: Record<FunctionName, lambda.Function>;
  readonly stream: kinesis.Stream;
  readonly table: dynamodb.Table;
}

const PERIOD = cdk.Duration.minutes(1);

/** Every run's series of `metric` (one per RunId), as `statistic`. */
function acrossRuns(namespace: string, metric: string, statistic: string, label: string): cloudwatch.MathExpression {
  return new cloudwatch.MathExpression({
    expression: `SEARCH('{"${namespace}",RunId} MetricName="${metric}"', '${statistic}', 60)`,
    label,
    period: PERIOD,
    usingMetrics: {},
  });
}

export class PipelineDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const { namespace, functions, stream, table } = props;
    const fns = Object.entries(functions) as [FunctionName, lambda.Function][];
    const perFunction = (make: (fn: lambda.Function) => cloudwatch.IMetric[]) =>
      fns.flatMap(([, fn]) => make(fn));
    const graph = (title: string, left: cloudwatch.IMetric[], width = 8) =>
      new cloudwatch.GraphWidget({ title, left, width, height: 6, period: PERIOD });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${cdk.Stack.of(this).stackName}-pipeline`,
      defaultInterval: cdk.Duration.hours(3),
    });
    this.dashboard.addWidgets(
      graph('End-to-end latency, ms (each run)', [
        acrossRuns(namespace, 'Latency', 'p50', 'p50'),
        acrossRuns(namespace, 'Latency', 'p99', 'p99'),
      ]),
      graph(
        'Latency per hop, p99, ms (each run)',
        HOPS.map((hop) => acrossRuns(namespace, hop, 'p99', hop)),
      ),
      graph('Loops completed per second (each run)', [
        new cloudwatch.MathExpression({
          expression: `SEARCH('{"${namespace}",RunId} MetricName="Latency"', 'SampleCount', 60) / 60`,
          label: 'loops/s',
          period: PERIOD,
          usingMetrics: {},
        }),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Invocations', perFunction((fn) => [fn.metricInvocations({ label: name(fns, fn) })]), 6),
      graph('Errors', perFunction((fn) => [fn.metricErrors({ label: name(fns, fn) })]), 6),
      graph('Throttles', perFunction((fn) => [fn.metricThrottles({ label: name(fns, fn) })]), 6),
      graph(
        'Concurrent executions (maximum)',
        perFunction((fn) => [fn.metric('ConcurrentExecutions', { statistic: 'Maximum', label: name(fns, fn) })]),
        6,
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Duration p50 and p99, ms',
        perFunction((fn) => [
          fn.metricDuration({ statistic: 'p50', label: `${name(fns, fn)} p50` }),
          fn.metricDuration({ statistic: 'p99', label: `${name(fns, fn)} p99` }),
        ]),
      ),
      graph('Iterator age (maximum), ms', [
        functions.midstream.metric('IteratorAge', { statistic: 'Maximum', label: 'midstream (Kinesis)' }),
        functions.downstream.metric('IteratorAge', { statistic: 'Maximum', label: 'downstream (DynamoDB stream)' }),
      ]),
      graph('Kinesis and DynamoDB throttles', [
        stream.metricWriteProvisionedThroughputExceeded({ label: 'Kinesis writes' }),
        stream.metricReadProvisionedThroughputExceeded({ label: 'Kinesis reads' }),
        table.metric('WriteThrottleEvents', { statistic: 'Sum', label: 'DynamoDB writes' }),
      ]),
    );
  }
}

function name(fns: [FunctionName, lambda.Function][], fn: lambda.Function): string {
  return fns.find(([, f]) => f === fn)?.[0] ?? 'function';
}
