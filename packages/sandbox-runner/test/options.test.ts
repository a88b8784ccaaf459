/** Options are validated before anything runs; errors name the option and the bad value. */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { PolicyError } from '@ktl/nsjail-config';
import { plan, run, SandboxError } from '../src/index';
import type { RunOptions } from '../src/options';
import { TEST_POLICY } from './helpers';

const base: RunOptions = { policy: TEST_POLICY, runtime: 'bwrap' };

const bad: [string, unknown, RunOptions | null, RegExp][] = [
  ['file', 'sh', base, /invalid option file: "sh" \(expected an absolute path/],
  ['args', '/bin/true', base, /invalid option args\[1\]: 5/],
  ['timeout', '/bin/true', { ...base, timeout: -1 }, /invalid option timeout: -1/],
  [
    'killSignal',
    '/bin/true',
    { ...base, killSignal: 'SIGFOO' as NodeJS.Signals },
    /killSignal: "SIGFOO"/,
  ],
  [
    'stdio',
    '/bin/true',
    { ...base, stdio: 'bogus' as 'pipe' },
    /stdio: "bogus" \(expected one of 'pipe'/,
  ],
  ['stdout', '/bin/true', { ...base, stdout: 'x' as 'pipe' }, /stdout: "x"/],
  ['binds', '/bin/true', { ...base, binds: [{ src: 'rel', dst: '/x' }] }, /binds\[0\]\.src: "rel"/],
  [
    'binds fd not open',
    '/bin/true',
    { ...base, binds: [{ src: '/tmp', dst: '/x', fd: 987654 }] },
    /binds\[0\]\.fd: 987654 \(expected an open descriptor/,
  ],
  [
    'binds fd not a number',
    '/bin/true',
    { ...base, binds: [{ src: '/tmp', dst: '/x', fd: -1 }] },
    /binds\[0\]\.fd: -1/,
  ],
  ['env', '/bin/true', { ...base, env: { 'A=B': '1' } }, /env: "A=B"/],
  ['cwd', '/bin/true', { ...base, cwd: 'tmp' }, /cwd: "tmp"/],
  ['runtime', '/bin/true', { ...base, runtime: 'docker' as 'bwrap' }, /runtime: "docker"/],
  ['logs', '/bin/true', { ...base, logs: 'loud' as 'off' }, /logs: "loud"/],
  [
    'allowUnenforced',
    '/bin/true',
    { ...base, allowUnenforced: ['seccomp'] },
    /allowUnenforced: "seccomp"/,
  ],
  [
    'input',
    '/bin/true',
    { ...base, input: 'x', stdin: 'inherit' },
    /stdin: "inherit" \(expected 'pipe' when input is set\)/,
  ],
  [
    'unknown',
    '/bin/true',
    { ...base, tiemout: 5 } as RunOptions,
    /invalid option tiemout: 5 \(expected no such option\)/,
  ],
  [
    'forceKillAfterDelay',
    '/bin/true',
    { ...base, forceKillAfterDelay: 1.5 },
    /forceKillAfterDelay: 1.5/,
  ],
  ['policy+policyFile', '/bin/true', { ...base, policyFile: '/x' }, /both policy and policyFile/],
  ['options', '/bin/true', null, /invalid option options: null \(expected an object/],
];

test.each(bad)('bad %s -> E_BAD_OPTION before spawning', async (_, file, options, message) => {
  const args = _ === 'args' ? (['-c', 5] as unknown as string[]) : [];
  expect(() => plan(file as string, args, options as RunOptions)).toThrow(
    expect.objectContaining({ code: 'E_BAD_OPTION', message: expect.stringMatching(message) }),
  );
  const h = run(file as string, args, options as RunOptions);
  expect(h.pid).toBeUndefined();
  await expect(h).rejects.toMatchObject({ code: 'E_BAD_OPTION' });
});

test('policy errors carry file:line:col', async () => {
  const f = join(tmpdir(), `ktl-runner-bad-${process.pid}.cfg`);
  writeFileSync(f, 'name: "x"\nbogus_field: 1\n');
  await expect(run('/bin/true', [], { policyFile: f, runtime: 'bwrap' })).rejects.toMatchObject({
    code: 'E_POLICY',
    message: expect.stringContaining(`${f}:2:1`),
  });
  await expect(run('/bin/true', [], { policyFile: '/nonexistent.cfg' })).rejects.toMatchObject({
    code: 'E_POLICY',
    message: expect.stringMatching(/cannot read policyFile \/nonexistent.cfg: ENOENT/),
  });
  // nsjail itself would refuse this one (validatePolicy NSJ-V006).
  await expect(
    run('/bin/true', [], { ...base, policy: { ...TEST_POLICY, cap: ['CAP_NOPE'] } }),
  ).rejects.toMatchObject({ code: 'E_POLICY', message: expect.stringContaining('CAP_NOPE') });
});

test('an aborted cancelSignal never spawns', async () => {
  const ac = new AbortController();
  ac.abort();
  const h = run('/bin/true', [], { ...base, cancelSignal: ac.signal });
  expect(h.pid).toBeUndefined();
  await expect(h).rejects.toMatchObject({
    code: 'E_CANCELED',
    isCanceled: true,
    message: expect.stringMatching(/^canceled/),
  });
});

test('SandboxError.from and the brand', () => {
  const abort = SandboxError.from(Object.assign(new Error('x'), { name: 'AbortError' }));
  expect([abort.code, abort.isCanceled]).toEqual(['E_CANCELED', true]);
  const pol = SandboxError.from(new PolicyError('bad', { code: 'E_SYNTAX', file: 'a.cfg' }));
  expect(pol.code).toBe('E_POLICY');
  expect(SandboxError.from('boom')).toMatchObject({
    code: 'E_INTERNAL',
    message: 'internal error: boom',
  });
  const e = new SandboxError('exited 1', { code: 'E_EXIT' });
  expect(SandboxError.from(e)).toBe(e);
  // The brand, not instanceof: an error from another copy of the package is recognized.
  expect(SandboxError.is({ [Symbol.for('@ktl/sandbox-runner/SandboxError')]: true })).toBe(true);
  expect(SandboxError.is(new Error('x'))).toBe(false);
});
