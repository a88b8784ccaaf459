import { describe, expect, test } from '@jest/globals';
import { resolveSandboxSettings, SandboxSettingsError } from '../src/sandbox/settings';

describe('resolveSandboxSettings', () => {
  test('sandboxed by default on Linux, embedded policy, auto runtime', () => {
    expect(resolveSandboxSettings({}, {}, 'linux')).toEqual({
      mode: 'default',
      policyFile: undefined,
      runtime: 'auto',
      logs: false,
      hermetic: false,
    });
  });
  test('--sandbox-config beats KTL_SANDBOX_CONFIG', () => {
    expect(
      resolveSandboxSettings({ sandboxConfig: 'a.cfg' }, { KTL_SANDBOX_CONFIG: 'b.cfg' }, 'linux')
        .policyFile,
    ).toBe('a.cfg');
    expect(resolveSandboxSettings({}, { KTL_SANDBOX_CONFIG: 'b.cfg' }, 'linux').policyFile).toBe(
      'b.cfg',
    );
  });
  test('KTL_SANDBOX_DISABLE=1 turns it off with a warning naming the risk', () => {
    const s = resolveSandboxSettings({}, { KTL_SANDBOX_DISABLE: '1' }, 'linux');
    expect(s.mode).toBe('off');
    expect(s.warning).toContain('unsandboxed');
    expect(s.warning).toContain('Docker socket');
    expect(resolveSandboxSettings({}, { KTL_SANDBOX_DISABLE: '0' }, 'linux').mode).toBe('default');
  });
  test.each([
    [{ sandbox: true }, { KTL_SANDBOX_DISABLE: '1' }, '--sandbox requires the sandbox'],
    [{ hermetic: true }, { KTL_SANDBOX_DISABLE: '1' }, '--hermetic requires the sandbox'],
    [{ hermetic: true, network: 'host' }, {}, '--hermetic and --network host'],
    [{ sandboxRuntime: 'docker' }, {}, 'not one of auto, nsjail, bwrap'],
  ])('refuses %j with %j', (flags, env, message) => {
    expect(() => resolveSandboxSettings(flags, env, 'linux')).toThrow(SandboxSettingsError);
    expect(() => resolveSandboxSettings(flags, env, 'linux')).toThrow(message);
  });
  test('--sandbox and --hermetic make it required', () => {
    expect(resolveSandboxSettings({ sandbox: true }, {}, 'linux').mode).toBe('required');
    expect(resolveSandboxSettings({ hermetic: true }, {}, 'linux')).toMatchObject({
      mode: 'required',
      hermetic: true,
    });
  });
  test('off on other platforms unless required', () => {
    expect(resolveSandboxSettings({}, {}, 'darwin').mode).toBe('off');
    expect(() => resolveSandboxSettings({ sandbox: true }, {}, 'darwin')).toThrow('needs Linux');
  });
});
