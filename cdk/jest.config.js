// TypeScript 7 breaks ts-jest (DESIGN.md): tests are transpiled by SWC instead.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.tsx?$': ['@swc/jest'] },
};
