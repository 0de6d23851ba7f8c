// TypeScript 7 breaks ts-jest: tests are transpiled by SWC instead (docs/cdk.md).
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.tsx?$': ['@swc/jest'] },
};
