/**
 * The app's configuration, read once from the environment the AWS sample's users already set:
 * USE_LOCALSTACK, HOT_DEPLOY, LAMBDA_DIST_PATH (the sample's LAMBDA_SRC_PATH is accepted and not
 * needed: `make watch` rebuilds from the repository's sources), plus USE_VPC, LAMBDA_ARCH,
 * PIPELINE_TARGET, STREAM_NAME, METRIC_NAMESPACE and LOADGEN_WORKER; and the stream's shard
 * count from the CDK context `shards` (`cdk deploy -c shards=4`) or `SHARDS`, and the three
 * functions' memory size from the context `memory` (`-c memory=512`) or `MEMORY`.
 */
import * as path from 'path';

/** Where the stack goes; said in the `Environment` output. */
export type Target = 'AWS' | 'LocalStack' | 'Sandbox';

/** The functions' CPU architecture. */
export type Architecture = 'x86_64' | 'arm64';

/** The three functions, by the name of their binary and of `dist/<fn>`. */
export const FUNCTIONS = ['upstream', 'midstream', 'downstream'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

/** Everything the stack is built from. */
export interface PipelineConfig {
  /** AWS, LocalStack (`USE_LOCALSTACK=true`) or the sandbox (`PIPELINE_TARGET=sandbox`). */
  readonly target: Target;
  /** Code from LocalStack's `hot-reload` bucket at `<distPath>/<fn>` instead of an asset. */
  readonly hotDeploy: boolean;
  /** Absolute path of the prebuilt functions: `<distPath>/<fn>/bootstrap` (`LAMBDA_DIST_PATH`). */
  readonly distPath: string;
  /** The AWS sample's VPC with DynamoDB gateway and Kinesis interface endpoints (`USE_VPC=true`). */
  readonly useVpc: boolean;
  /** `LAMBDA_ARCH`: x86_64 (default) or arm64. */
  readonly architecture: Architecture;
  /** The Kinesis stream's name (`STREAM_NAME`, default `KinesisStream`). */
  readonly streamName: string;
  /** Where downstream publishes (`METRIC_NAMESPACE`, the contract's default). */
  readonly metricNamespace: string;
  /** Also deploy the loadgen worker function `loadgen --lambda N` invokes (`LOADGEN_WORKER=true`),
   * from `<distPath>/loadgen-worker/bootstrap`. */
  readonly loadgenWorker: boolean;
  /** The Kinesis stream's shards: context `shards` or `SHARDS`, default 1. */
  readonly shards: number;
  /** The three functions' memory size, MB (and so their CPU share): context `memory` or
   * `MEMORY`, default 256. */
  readonly memory: number;
}

/** Lambda's memory sizes, MB. */
export const MIN_MEMORY = 128;
export const MAX_MEMORY = 10240;

/** Reads a memory size: a whole number of MB from MIN_MEMORY to MAX_MEMORY. */
export function parseMemory(value: unknown, source: string): number {
  const text = String(value).trim();
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isInteger(n) || n < MIN_MEMORY || n > MAX_MEMORY) {
    throw new Error(`${source}=${String(value)} must be a whole number of MB from ${MIN_MEMORY} to ${MAX_MEMORY}`);
  }
  return n;
}

/** Most shards a stream may have here: AWS's default shard quota in us-east-1. */
export const MAX_SHARDS = 500;

/** Reads a shard count: a whole number from 1 to MAX_SHARDS. */
export function parseShards(value: unknown, source: string): number {
  const text = String(value).trim();
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isInteger(n) || n < 1 || n > MAX_SHARDS) {
    throw new Error(`${source}=${String(value)} must be a whole number of shards from 1 to ${MAX_SHARDS}`);
  }
  return n;
}

/** The contract's metric namespace (contract/src/metrics.rs). */
export const DEFAULT_NAMESPACE = 'ServerlessDataProcessingPipeline/Latencies';

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = (env[name] ?? '').trim().toLowerCase();
  if (['', '0', 'false', 'no', 'off'].includes(value)) return false;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  throw new Error(`${name}=${env[name]} is not a boolean: use true or false`);
}

/** Reads the configuration; `repoRoot` anchors the default dist and source paths. */
export function configFromEnv(
  env: NodeJS.ProcessEnv,
  repoRoot: string,
  context: { shards?: unknown; memory?: unknown } = {},
): PipelineConfig {
  const explicit = (env.PIPELINE_TARGET ?? '').trim().toLowerCase();
  let target: Target;
  if (explicit === 'sandbox') target = 'Sandbox';
  else if (explicit === 'localstack') target = 'LocalStack';
  else if (explicit === 'aws') target = 'AWS';
  else if (explicit === '') target = flag(env, 'USE_LOCALSTACK') ? 'LocalStack' : 'AWS';
  else throw new Error(`PIPELINE_TARGET=${env.PIPELINE_TARGET} must be aws, localstack or sandbox`);

  const arch = (env.LAMBDA_ARCH ?? 'x86_64').trim().toLowerCase();
  let architecture: Architecture;
  if (['x86_64', 'amd64', 'x86-64'].includes(arch)) architecture = 'x86_64';
  else if (['arm64', 'aarch64'].includes(arch)) architecture = 'arm64';
  else throw new Error(`LAMBDA_ARCH=${env.LAMBDA_ARCH} must be x86_64 or arm64`);

  const resolve = (value: string | undefined, fallback: string) =>
    path.resolve(repoRoot, value && value.trim() !== '' ? value : fallback);
  return {
    target,
    hotDeploy: flag(env, 'HOT_DEPLOY'),
    distPath: resolve(env.LAMBDA_DIST_PATH, 'dist'),
    useVpc: flag(env, 'USE_VPC'),
    architecture,
    streamName: env.STREAM_NAME?.trim() || 'KinesisStream',
    metricNamespace: env.METRIC_NAMESPACE?.trim() || DEFAULT_NAMESPACE,
    loadgenWorker: flag(env, 'LOADGEN_WORKER'),
    shards:
      context.shards !== undefined
        ? parseShards(context.shards, 'shards')
        : env.SHARDS !== undefined && env.SHARDS.trim() !== ''
          ? parseShards(env.SHARDS, 'SHARDS')
          : 1,
    memory:
      context.memory !== undefined
        ? parseMemory(context.memory, 'memory')
        : env.MEMORY !== undefined && env.MEMORY.trim() !== ''
          ? parseMemory(env.MEMORY, 'MEMORY')
          : 256,
  };
}
