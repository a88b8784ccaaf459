/** Shared test setup: the test policy, the fixtures bound at /fixtures, runtime gates. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NsJailConfig, parsePolicy } from '@ktl/nsjail-config';
import type { RunOptions } from '../src/options';
import { locate } from '../src/runtimes';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const TEST_POLICY: NsJailConfig = parsePolicy(readFileSync(join(FIXTURES, 'test.cfg')), {
  filename: join(FIXTURES, 'test.cfg'),
}).policy;

export type Runtime = 'bwrap' | 'nsjail';

export function opts(runtime: Runtime, extra: Partial<RunOptions> = {}): RunOptions {
  const { policy, ...rest } = extra;
  return {
    policy: { ...TEST_POLICY, ...policy },
    runtime,
    binds: [{ src: FIXTURES, dst: '/fixtures', readonly: true }],
    stdin: 'ignore',
    ...rest,
  };
}

/** Where a runtime is, or why its tests are skipped here. */
export function gate(runtime: Runtime): { ok: boolean; why: string } {
  try {
    const found = locate(runtime);
    if (found) return { ok: true, why: `${runtime} at ${found.path}` };
  } catch (e) {
    return { ok: false, why: String(e) };
  }
  return {
    ok: false,
    why:
      runtime === 'nsjail'
        ? 'no nsjail binary (set KTL_NSJAIL_BIN or put nsjail on PATH)'
        : 'no bwrap binary (apt-get install bubblewrap, or set KTL_BWRAP_BIN)',
  };
}

export const isRoot = process.getuid?.() === 0;
