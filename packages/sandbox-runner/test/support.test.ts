/**
 * The bwrap support table covers the whole schema, and every field bwrap cannot enforce is
 * refused with its name (and accepted when the caller allows it unenforced).
 */
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { type NsJailConfig, policyDescriptor } from '@ktl/nsjail-config';
import { BWRAP_SUPPORT, IDMAP_SUPPORT, MOUNT_SUPPORT, plan, SandboxError } from '../src/index';
import { FIXTURES, gate, opts, TEST_POLICY } from './helpers';

const names = (fields: readonly { name: string }[]) => fields.map((f) => f.name).sort();

test('the table covers every schema field exactly', () => {
  expect(Object.keys(BWRAP_SUPPORT).sort()).toEqual(names(policyDescriptor.fields));
  expect(Object.keys(MOUNT_SUPPORT).sort()).toEqual(
    names(policyDescriptor.byName.get('mount')!.message!.fields),
  );
  expect(Object.keys(IDMAP_SUPPORT).sort()).toEqual(
    names(policyDescriptor.byName.get('uidmap')!.message!.fields),
  );
  for (const [field, s] of Object.entries(BWRAP_SUPPORT)) {
    expect([field, s.note.length > 3]).toEqual([field, true]);
    if (s.kind === 'refused') expect([field, typeof s.refuse]).toEqual([field, 'function']);
  }
});

/** A value for each refused field that bwrap cannot enforce. */
const REFUSED_SAMPLES: Record<string, Partial<NsJailConfig>> = {
  daemon: { daemon: true },
  pass_fd: { pass_fd: [5] },
  disable_no_new_privs: { disable_no_new_privs: true },
  disable_tsc: { disable_tsc: true },
  clone_newtime: { clone_newtime: true },
  seccomp_log: { seccomp_log: true },
  seccomp_unotify: { seccomp_unotify: true },
  seccomp_unotify_report: { seccomp_unotify_report: '/tmp/report' },
  use_core_scheduling: { use_core_scheduling: true },
  iface_no_lo: { iface_no_lo: true },
  iface_own: { iface_own: ['eth0'] },
  macvlan_iface: { macvlan_iface: 'eth0' },
  traffic_rule: { traffic_rule: [{ action: 'DROP' }] },
  user_net: { user_net: {} },
  exec_bin: { exec_bin: { path: '/bin/true' } },
};

/** Values of enforced fields that bwrap still cannot honour. */
const REFUSED_VALUES: [string, Partial<NsJailConfig>][] = [
  // seccomp is compiled by ktl for bwrap; only USER_NOTIF, which needs a supervisor, is refused.
  ['seccomp_string', { seccomp_string: ['USER_NOTIF { write }', 'DEFAULT ALLOW'] }],
  ['mode', { mode: 'LISTEN', port: 8080 }],
  ['mode', { mode: 'RERUN' }],
  ['clone_newns', { clone_newns: false }],
  ['uidmap', { uidmap: [{ inside_id: '0' }, { inside_id: '1', outside_id: '1' }] }],
  ['uidmap.count', { uidmap: [{ inside_id: '0', count: 2 }] }],
  ['gidmap.use_newidmap', { gidmap: [{ inside_id: '0', use_newidmap: true }] }],
  ['uidmap.outside_id', { uidmap: [{ inside_id: '0', outside_id: '12345' }] }],
  [
    'mount[9].noexec',
    { mount: [...TEST_POLICY.mount!, { dst: '/x', fstype: 'tmpfs', noexec: true }] },
  ],
  ['mount[9].fstype', { mount: [...TEST_POLICY.mount!, { dst: '/sys', fstype: 'sysfs' }] }],
  [
    'mount[9].options',
    { mount: [...TEST_POLICY.mount!, { dst: '/x', fstype: 'tmpfs', options: 'nr_inodes=5' }] },
  ],
];

const g = gate('bwrap');
const t = g.ok ? test : test.skip;
const named = (n: string) => (g.ok ? n : `${n} [skipped: ${g.why}]`);

describe('bwrap compiles seccomp policies', () => {
  t.each([
    ['seccomp_string', { seccomp_string: ['POLICY p { ALLOW { write } } USE p DEFAULT KILL'] }],
    ['seccomp_policy_file', { seccomp_policy_file: join(FIXTURES, 'write-only.kafel') }],
  ] as [string, Partial<NsJailConfig>][])(
    named('%s becomes --seccomp FD with the compiled program'),
    (_f, policy) => {
      const p = plan('/bin/true', [], opts('bwrap', { policy }));
      const i = p.argv.indexOf('--seccomp');
      expect(i).toBeGreaterThan(0);
      expect(p.fds.find((f) => f.fd === Number(p.argv[i + 1]))?.purpose).toBe('data');
    },
  );

  t(named('a kafel error is a policy error with the kafel name as hint'), () => {
    expect(() =>
      plan('/bin/true', [], opts('bwrap', { policy: { seccomp_string: ['ALLOW { uname }'] } })),
    ).toThrow(
      /NSJ-V012: seccomp policy: Undefined identifier `uname'[\s\S]*kafel calls it `newuname`/,
    );
  });
});

describe('bwrap refuses what it cannot enforce', () => {
  const refused = Object.entries(BWRAP_SUPPORT).filter(([, s]) => s.kind === 'refused');
  test('every refused field has a sample', () => {
    expect(refused.map(([f]) => f).sort()).toEqual(Object.keys(REFUSED_SAMPLES).sort());
  });
  const cases: [string, Partial<NsJailConfig>][] = [
    ...Object.entries(REFUSED_SAMPLES),
    ...REFUSED_VALUES,
  ];
  t.each(cases)(named('%s'), (field, policy) => {
    const generic = field.replace(/\[\d+\]/, '');
    let err: unknown;
    try {
      plan('/bin/true', [], opts('bwrap', { policy }));
    } catch (e) {
      err = e;
    }
    expect(SandboxError.is(err)).toBe(true);
    const e = err as SandboxError;
    expect([e.code, e.message]).toEqual(['E_UNENFORCEABLE', expect.stringContaining(field)]);
    expect(e.message).toMatch(/^bwrap cannot enforce /);
    // nsjail is suggested only where it helps: the runner refuses exec_bin and daemon there too.
    if (BWRAP_SUPPORT[generic.split('.')[0]!]?.refusedUnderNsjail) {
      expect(e.hint).toBe(
        `remove ${generic} from the policy (the runner refuses it under nsjail too), or pass allowUnenforced: ["${generic}"] to run without it`,
      );
    } else expect(e.hint).toMatch(/^use runtime 'nsjail', or pass allowUnenforced: /);
    const p = plan('/bin/true', [], opts('bwrap', { policy, allowUnenforced: [generic] }));
    expect(p.notes.join('\n')).toContain(field);
  });
});

describe('fields the runner refuses under nsjail as well', () => {
  const ns = gate('nsjail');
  const tn = ns.ok ? test : test.skip;
  const everywhere = Object.entries(BWRAP_SUPPORT)
    .filter(([, s]) => s.refusedUnderNsjail)
    .map(([f]) => f);

  test('are exec_bin and daemon', () => {
    expect(everywhere.sort()).toEqual(['daemon', 'exec_bin']);
  });

  // The table's claim, checked against the nsjail plan: refused there exactly for these.
  tn.each(Object.keys(REFUSED_SAMPLES))(
    ns.ok ? '%s under nsjail' : `%s under nsjail [skipped: ${ns.why}]`,
    (field) => {
      const attempt = () =>
        plan('/bin/true', [], opts('nsjail', { policy: REFUSED_SAMPLES[field]! }));
      if (everywhere.includes(field))
        expect(attempt).toThrow(
          new RegExp(`^policy error: ${field} cannot be used with the runner`),
        );
      else expect(attempt).not.toThrow();
    },
  );

  t(named('a mix: remove those, nsjail for the rest'), () => {
    let err: unknown;
    try {
      plan(
        '/bin/true',
        [],
        opts('bwrap', { policy: { exec_bin: { path: '/bin/true' }, clone_newtime: true } }),
      );
    } catch (e) {
      err = e;
    }
    expect((err as SandboxError).hint).toBe(
      `remove exec_bin from the policy (the runner refuses it under nsjail too); for clone_newtime use runtime 'nsjail'; or pass allowUnenforced: ["clone_newtime","exec_bin"] to run without them`,
    );
  });
});
