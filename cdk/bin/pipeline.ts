#!/usr/bin/env node
/**
 * The CDK app: `cdk deploy` (AWS), `USE_LOCALSTACK=true cdklocal deploy` (LocalStack),
 * `PIPELINE_TARGET=sandbox cdk deploy --method=direct` (the sandbox, through its edge).
 */
import * as path from 'path';

import * as cdk from 'aws-cdk-lib';

import { configFromEnv } from '../lib/config';
import { PipelineStack } from '../lib/pipeline-stack';

try {
  const app = new cdk.App();
  const config = configFromEnv(process.env, path.resolve(__dirname, '..', '..'), {
    shards: app.node.tryGetContext('shards'),
    memory: app.node.tryGetContext('memory'),
  });
  new PipelineStack(app, process.env.STACK_NAME?.trim() || 'PipelineStack', {
    config,
    description: 'Serverless data processing pipeline: API Gateway -> Kinesis -> DynamoDB -> CloudWatch',
    // The sandbox's emulator has no CDK bootstrap version parameter to check.
    synthesizer:
      config.target === 'Sandbox' ? new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }) : undefined,
  });
  app.synth();
} catch (error) {
  console.error(`pipeline: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
