import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { repoRoot } from './helpers';

// scripts/sandbox-demo.sh is the human-readable proof of the sandbox; it must pass here too.
const ready = existsSync('/var/lib/ktl-rig/env');
const rigTest = ready ? test : test.skip;
const why = ready ? '' : ' [skipped: the BuildKit rig is not up; run scripts/rig.sh up]';

rigTest(
  `scripts/sandbox-demo.sh passes (no FAIL, exit 0)${why}`,
  () => {
    const r = spawnSync('bash', [join(repoRoot, 'scripts', 'sandbox-demo.sh')], {
      encoding: 'utf8',
      timeout: 240_000,
      env: { ...process.env, KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    });
    expect(r.stdout).not.toContain('FAIL ');
    expect(r.stdout).toContain('PASS  banner by default');
    expect(r.stdout).toContain('PASS  the engine socket is absent from the jail');
    expect(r.stdout).toContain('PASS  --hermetic: the client has no network but loopback');
    expect(r.stdout).toContain(
      'PASS  unsandboxed: a host-only file named with --build-context is read',
    );
    expect(r.stdout).toContain('PASS  sandboxed: the same host-only file is not read');
    expect(r.stdout).toContain('PASS  sandboxed: a named context inside the tree is visible');
    for (const layout of ['from / with absolute paths', "from the repository's parent"]) {
      expect(r.stdout).toContain(`PASS  sandboxed, ${layout}: the host-only file is not read`);
      expect(r.stdout).toContain(`PASS  sandboxed, ${layout}: the link is refused`);
    }
    // The permissive-builder contrast runs when the builder grants network.host, else SKIPs.
    expect(r.stdout).toMatch(
      /^(PASS {2}permissive builder: a RUN step with network\.host reads a host-loopback marker|SKIP {2}host-marker contrast through a permissive builder \(the builder is not permissive: .+\))/m,
    );
    // The same network.host step through the rootless managed builder is blocked, or SKIPs
    // with the reason when none runs.
    expect(r.stdout).toMatch(
      /^(PASS {2}rootless managed builder \(.+\): the same network\.host step is blocked from the host's loopback|SKIP {2}rootless managed builder: .+\(no rootless managed builder runs)/m,
    );
    expect(r.status).toBe(0);
  },
  250_000,
);
