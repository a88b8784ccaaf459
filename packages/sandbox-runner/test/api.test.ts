/** The public entry point: what it exports, what it imports, detectRuntimes and doctor. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import * as api from '../src/index';
import { FIXTURES, gate } from './helpers';

const SRC = join(FIXTURES, '..', '..', 'src');

test('exports run, plan, defaultPolicy, detectRuntimes, doctor, SandboxError', () => {
  for (const k of ['run', 'plan', 'defaultPolicy', 'detectRuntimes', 'doctor', 'SandboxError']) {
    expect([k, typeof (api as Record<string, unknown>)[k]]).toEqual([k, 'function']);
  }
});

test('imports only node builtins, @ktl/nsjail-config and itself (no oclif, no gRPC)', () => {
  // ...and the default policy's text, compiled in at build time.
  const allowed =
    /^(node:|\.\/|@ktl\/nsjail-config$|\.\.\/\.\.\/\.\.\/testdata\/sandbox\/linux-ci\.cfg$)/;
  for (const f of readdirSync(SRC)) {
    const text = readFileSync(join(SRC, f), 'utf8');
    for (const m of text.matchAll(/from '([^']+)'/g)) {
      expect([f, m[1]]).toEqual([f, expect.stringMatching(allowed)]);
    }
  }
  const pkg = JSON.parse(readFileSync(join(SRC, '..', 'package.json'), 'utf8'));
  expect(Object.keys(pkg.dependencies).filter((d) => /oclif|grpc/.test(d))).toEqual([]);
});

const bw = gate('bwrap');
(bw.ok ? test : test.skip)(
  bw.ok ? 'detectRuntimes and doctor' : `detectRuntimes and doctor [skipped: ${bw.why}]`,
  async () => {
    const rts = await api.detectRuntimes();
    expect(rts.bwrap?.version).toMatch(/^\d+\.\d+/);
    const report = await api.doctor();
    expect(report.userNamespaces.ok).toBe(true);
    expect(report.seccomp.ok).toBe(true);
    // seccomp.test.ts runs kafel policies under bwrap: the doctor must not say it refuses them.
    expect(report.seccomp.detail).toContain(
      'kafel policies apply under both runtimes: nsjail compiles them itself, for bwrap ktl compiles them to BPF',
    );
    expect(['v1', 'v2', 'hybrid']).toContain(report.cgroups.layout);
    const probes = report.probes.filter((p) => p.runtime === 'bwrap');
    expect(probes.map((p) => [p.name, p.ok, p.detail])).toEqual([
      ['host-marker-invisible', true, expect.stringContaining('hidden')],
      ['bind-visible-readonly', true, expect.stringContaining('visible, read-only')],
      ['network-isolated', true, 'interfaces in the jail: lo'],
    ]);
    if (gate('nsjail').ok) {
      expect(report.selected).toBe('nsjail');
      expect(report.probes.filter((p) => p.runtime === 'nsjail').every((p) => p.ok)).toBe(true);
    }
    expect(report.ok).toBe(true);
  },
);
