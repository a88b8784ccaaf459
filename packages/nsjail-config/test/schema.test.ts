import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import {
  assertPolicy,
  type MessageDescriptor,
  type PolicyError,
  policyDescriptor,
} from '../src/index';
import { policyJsonSchema, policySchema } from '../src/schema/index';
import { message } from './arbitrary';

function messages(
  d: MessageDescriptor,
  seen = new Map<string, MessageDescriptor>(),
): Map<string, MessageDescriptor> {
  seen.set(d.fullName, d);
  for (const f of d.fields)
    if (f.message && !seen.has(f.message.fullName)) messages(f.message, seen);
  return seen;
}

describe('schema', () => {
  const all = messages(policyDescriptor);

  test('covers every message of config.proto', () => {
    expect([...all.keys()].sort()).toEqual([
      'nsjail.Exe',
      'nsjail.IdMap',
      'nsjail.MountPt',
      'nsjail.NsJailConfig',
      'nsjail.NsJailConfig.TrafficRule',
      'nsjail.NsJailConfig.UserNet',
      'nsjail.NsJailConfig.UserNet.NstunRule',
      'nsjail.NsJailConfig.UserNet.Pasta',
    ]);
  });

  test('field numbers are unique and descriptions present', () => {
    for (const m of all.values()) {
      const numbers = m.fields.map((f) => f.number);
      expect(new Set(numbers).size).toBe(numbers.length);
      for (const f of m.fields) expect(f.description.length).toBeGreaterThan(5);
    }
  });

  test("NsJailConfig has nsjail main's 101 fields, numbered 1..101", () => {
    const numbers = policyDescriptor.fields.map((f) => f.number).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
  });

  test.each([
    ['hostname', 4, 'string', 'NSJAIL'],
    ['time_limit', 11, 'uint32', 600],
    ['rlimit_as', 30, 'uint64', 4096n],
    ['cgroup_mem_swap_max', 73, 'int64', -1n],
    ['clone_newtime', 63, 'bool', false],
    ['seccomp_unotify', 99, 'bool', false],
    ['use_core_scheduling', 101, 'bool', false],
    ['user_net', 97, 'message', undefined],
  ] as const)('%s is field %i of type %s with default %p', (name, number, type, def) => {
    const f = policyDescriptor.byName.get(name)!;
    expect([f.number, f.type, f.default]).toEqual([number, type, def]);
  });

  test('required fields are marked', () => {
    const required = [...all.values()].flatMap((m) =>
      m.fields.filter((f) => f.label === 'required').map((f) => `${m.name}.${f.name}`),
    );
    expect(required.sort()).toEqual(['Exe.path', 'MountPt.dst']);
  });

  test('the zod schema refuses what the parser refuses', () => {
    expect(policySchema().safeParse({ mount: [{ src: '/' }] }).success).toBe(false);
    expect(policySchema().safeParse({ time_limit: -1 }).success).toBe(false);
    expect(policySchema().safeParse({ rlimit_as: 2n ** 64n }).success).toBe(false);
    expect(policySchema().safeParse({ hostnme: 'x' }).success).toBe(false);
    expect(
      policySchema().safeParse({ mode: 'ONCE', rlimit_as: 5n, mount: [{ dst: '/' }] }).success,
    ).toBe(true);
  });

  test('the JSON Schema lists every field with its description', () => {
    const s = policyJsonSchema() as {
      properties: Record<string, { description?: string; type?: string }>;
      additionalProperties: boolean;
    };
    expect(Object.keys(s.properties)).toHaveLength(101);
    expect(s.properties.rlimit_as).toMatchObject({ type: 'string' });
    expect(s.properties.hostname?.description).toContain('Default: "NSJAIL"');
    expect(s.additionalProperties).toBe(false);
  });
});

describe('assertPolicy (descriptor checks) and the zod schema agree', () => {
  const verdicts = (p: unknown) => {
    let ours = true;
    try {
      assertPolicy(p);
    } catch (e) {
      expect((e as PolicyError).code).toBe('E_INVALID');
      ours = false;
    }
    return { ours, zod: policySchema().safeParse(p).success };
  };

  test('on valid policies (generated from the descriptors)', () => {
    fc.assert(
      fc.property(message(policyDescriptor), (p) => {
        expect(verdicts(p)).toEqual({ ours: true, zod: true });
      }),
      { numRuns: 300 },
    );
  });

  // A valid policy with one value replaced by something of another kind, or one key added.
  const wrongValues = fc.constantFrom<unknown>(
    'x',
    '',
    7,
    -1,
    1.5,
    Number.NaN,
    2 ** 40,
    5n,
    -5n,
    2n ** 64n,
    true,
    null,
    [],
    ['x'],
    [7],
    {},
    { dst: '/' },
    new Uint8Array([1]),
    'ONCE',
    'NOPE',
  );
  test('on policies with one field broken', () => {
    fc.assert(
      fc.property(
        message(policyDescriptor),
        fc.constantFrom(...policyDescriptor.fields.map((f) => f.name), 'hostnme', '__proto__x'),
        wrongValues,
        (p, key, value) => {
          const broken = { ...p, [key]: value };
          const v = verdicts(broken);
          expect([key, value, v.ours]).toEqual([key, value, v.zod]);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('inside nested messages and lists', () => {
    for (const p of [
      { mount: [{ src: '/' }] },
      { mount: [{ dst: '/', is_bind: 'yes' }] },
      { mount: [{ dst: '/' }, 'x'] },
      { exec_bin: { path: '/bin/sh', arg: ['a', 3] } },
      { exec_bin: {} },
      { uidmap: [{ inside_id: '0', count: -1 }] },
      { user_net: { nstun_rule: [{ action: 'DROP?' }] } },
      { rlimit_as: 2n ** 64n },
      { time_limit: -1 },
      { mount: [{ dst: '/', extra: 1 }] },
      { mount: [{ dst: '/', src_content: new Uint8Array([1]) }] },
      [],
      null,
      'policy',
    ]) {
      const v = verdicts(p);
      expect([p, v.ours]).toEqual([p, v.zod]);
    }
    expect(() => assertPolicy({ mount: [{ dst: '/' }, { src: '/x' }] })).toThrow(
      'invalid policy at mount[1].dst: required field missing',
    );
    expect(() => assertPolicy({ hostnme: 'x' })).toThrow(
      'invalid policy at (root): unknown field "hostnme"',
    );
  });
});
