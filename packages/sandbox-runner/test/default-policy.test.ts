/**
 * Without policy or policyFile, run() and plan() use the embedded default policy, which is
 * testdata/sandbox/linux-ci.cfg (compiled in, exported as defaultPolicy()).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { parsePolicy, validatePolicy } from '@ktl/nsjail-config';
import { defaultPolicy, plan, run } from '../src/index';
import { FIXTURES, gate } from './helpers';

const LINUX_CI = join(FIXTURES, '..', '..', '..', '..', 'testdata', 'sandbox', 'linux-ci.cfg');

test('defaultPolicy() is testdata/sandbox/linux-ci.cfg', () => {
  const file = parsePolicy(readFileSync(LINUX_CI), { filename: LINUX_CI }).policy;
  expect(defaultPolicy()).toEqual(file);
  expect(defaultPolicy().name).toBe('linux-ci');
  expect(validatePolicy(defaultPolicy()).filter((d) => d.severity === 'error')).toEqual([]);
});

test('defaultPolicy() is a new object each call', () => {
  const a = defaultPolicy();
  a.mount?.push({ src: '/home', dst: '/home', is_bind: true });
  a.clone_newnet = false;
  expect(defaultPolicy().mount).toHaveLength(a.mount!.length - 1);
  expect(defaultPolicy().clone_newnet).toBe(true);
});

const bw = gate('bwrap');
(bw.ok ? test : test.skip)(
  bw.ok
    ? 'no policy: plan() is the plan of defaultPolicy()'
    : `no policy: plan() is the plan of defaultPolicy() [skipped: ${bw.why}]`,
  () => {
    const implicit = plan('/bin/echo', ['hi'], { runtime: 'bwrap' });
    expect(implicit).toEqual(
      plan('/bin/echo', ['hi'], { runtime: 'bwrap', policy: defaultPolicy() }),
    );
    // Private network and the seccomp deny-list of linux-ci are in the argv.
    expect(implicit.argv).toEqual(expect.arrayContaining(['--unshare-net', '--seccomp']));
  },
);

(bw.ok ? test : test.skip)(
  bw.ok
    ? "run('/bin/echo', ['hi']) with no options runs under the default policy"
    : `run('/bin/echo', ['hi']) with no options runs under the default policy [skipped: ${bw.why}]`,
  async () => {
    const r = await run('/bin/echo', ['hi']);
    expect([r.exitCode, r.stdout, r.failed]).toEqual([0, 'hi\n', false]);
    // linux-ci's hostname, and its private network: loopback only.
    const h = await run('/bin/sh', [
      '-c',
      'cat /proc/sys/kernel/hostname; tail -n +3 /proc/net/dev',
    ]);
    const [host, ...nets] = (h.stdout ?? '').trim().split('\n');
    expect([host, nets.map((l) => l.split(':')[0]!.trim())]).toEqual(['ktl-sandbox', ['lo']]);
  },
);
