// Shared jest settings: TypeScript through swc, native ESM (run with --experimental-vm-modules),
// sibling packages resolved to their sources so a test never runs a stale dist/.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));

export function preset(overrides = {}) {
  return {
    testEnvironment: 'node',
    extensionsToTreatAsEsm: ['.ts', '.cfg'],
    transform: {
      '^.+\\.cfg$': join(root, 'scripts', 'jest-text-transform.js'),
      '^.+\\.ts$': [
        '@swc/jest',
        {
          jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
          module: { type: 'es6' },
          sourceMaps: 'inline',
        },
      ],
    },
    moduleNameMapper: {
      '^@ktl/nsjail-config$': join(root, 'packages/nsjail-config/src/index.ts'),
      '^@ktl/nsjail-config/schema$': join(root, 'packages/nsjail-config/src/schema/index.ts'),
      '^@ktl/sandbox-runner$': join(root, 'packages/sandbox-runner/src/index.ts'),
      '^@ktl/buildkit-client$': join(root, 'packages/buildkit-client/src/index.ts'),
    },
    moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json', 'cfg'],
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    setupFiles: [join(root, 'scripts', 'jest-isolate-env.js')],
    reporters: ['default', join(root, 'scripts', 'jest-results-reporter.js')],
    ...overrides,
  };
}
