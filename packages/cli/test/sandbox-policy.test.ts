import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { PolicyError } from '@ktl/nsjail-config';
import { EMBEDDED_POLICIES, loadSandboxPolicy, PolicyLoadError } from '../src/sandbox/policy';
import { repoRoot } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'ktl-pol-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadSandboxPolicy', () => {
  test("the embedded policies are the repo's linux-ci and hermetic policies", () => {
    expect(EMBEDDED_POLICIES.default).toBe(
      readFileSync(join(repoRoot, 'testdata/sandbox/linux-ci.cfg'), 'utf8'),
    );
    expect(EMBEDDED_POLICIES.hermetic).toBe(
      readFileSync(join(repoRoot, 'testdata/sandbox/hermetic.cfg'), 'utf8'),
    );
  });
  test('default and hermetic', async () => {
    expect((await loadSandboxPolicy(undefined, false)).label).toBe('embedded default');
    const h = await loadSandboxPolicy(undefined, true);
    expect([h.label, h.policy.clone_newnet]).toEqual(['embedded hermetic', true]);
  });
  test('a malformed file fails with FILE:LINE:COL', async () => {
    const f = join(dir, 'bad.cfg');
    writeFileSync(f, 'name: "x"\nmount { src: "/" dst: "/" is_bind: tru }\n');
    const err = await loadSandboxPolicy(f, false).catch((e: unknown) => e);
    expect(PolicyError.is(err) ? err.message : String(err)).toContain(
      `${f}:2:36: Invalid value for boolean field "is_bind"`,
    );
  });
  test('a missing file fails naming it', async () => {
    const err = await loadSandboxPolicy(join(dir, 'nope.cfg'), false).catch((e: unknown) => e);
    expect(PolicyError.is(err) && err.code).toBe('E_IO');
  });
  test('a policy nsjail would refuse at start-up fails before anything runs', async () => {
    const f = join(dir, 'swap.cfg');
    writeFileSync(f, 'cgroup_mem_memsw_max: 1\ncgroup_mem_swap_max: 1\n');
    await expect(loadSandboxPolicy(f, false)).rejects.toThrow(PolicyLoadError);
    await expect(loadSandboxPolicy(f, false)).rejects.toThrow(`${f}:2:1: NSJ-V001`);
  });
});
