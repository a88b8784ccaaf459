import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from '@jest/globals';
import { gate, testEngines } from '../../buildkit-client/test/engines';
import { ktlBin, repoRoot } from './helpers';

// Ctrl-C on a sandboxed build, on each engine (buildkit-client/test/engines.ts): the solve is
// canceled on the daemon (the RUN step's process goes away), the jail is torn down, ktl exits
// 130, and nothing is left running.

function running(pattern: string): string[] {
  const r = spawnSync('pgrep', ['-af', pattern], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() && !l.includes('pgrep'));
}

describe.each((await testEngines()).map((e) => [e.label, e] as const))(
  'Ctrl-C on %s',
  (_l, engine) => {
    const { test: rigTest, why } = gate(engine);
    const dockerHost = engine.dockerHost;
    rigTest(
      `SIGINT cancels the build on the daemon, exits 130, leaves no process${why}`,
      async () => {
        const nonce = `ktl-cancel-${process.pid}-${Date.now()}`;
        const child = spawn(
          ktlBin,
          ['build', join(repoRoot, 'testdata', 'build', 'slow'), '--build-arg', `NONCE=${nonce}`],
          {
            env: {
              ...process.env,
              DOCKER_HOST: dockerHost!,
              KTL_SANDBOX_DISABLE: '',
              KTL_SANDBOX_CONFIG: '',
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        const exited = new Promise<number | null>((resolve) =>
          child.on('exit', (code) => resolve(code)),
        );
        const deadline = Date.now() + 60_000;
        while (!err.includes(`started ${nonce}`) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 100));
        expect(err).toContain(`started ${nonce}`);
        expect(err).toMatch(/^Running ktl build inside the sandbox/);
        child.kill('SIGINT');
        const t0 = Date.now();
        expect(await exited).toBe(130);
        expect(Date.now() - t0).toBeLessThan(10_000);
        // The daemon kills the step's processes on its own time (runc, under load: seconds, and
        // tens of them on a machine busy with other builds); a leak would outlive the wait (the
        // step sleeps 60 s, and the wait ends well before that).
        const ours = () =>
          running('sleep 60').filter((l) => {
            try {
              return readFileSync(`/proc/${l.split(' ')[0]}/environ`, 'utf8').includes(
                `NONCE=${nonce}`,
              );
            } catch {
              return false;
            }
          });
        const gone = Date.now() + 35_000;
        while ((running(nonce).length > 0 || ours().length > 0) && Date.now() < gone)
          await new Promise((r) => setTimeout(r, 250));
        expect(running(nonce)).toEqual([]);
        // The RUN step's processes carry the build arg in their environment; only ours count
        // (other builds may be running on the machine).
        expect(ours()).toEqual([]);
      },
      90_000,
    );
  },
);
