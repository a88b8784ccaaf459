/**
 * Exit statuses of failures that are not the build's own (README: 5 when the build succeeded
 * but writing an output failed, 6 when the connection to the builder broke), on the rig, on
 * the host and in the sandbox:
 * - the builder gone mid-build: ktl reaches the rig's engine through a socket proxy of the
 *   test's own, which drops every connection while a RUN step runs (as a killed daemon's
 *   sockets do; the shared rig itself is never stopped): exit 6;
 * - an export the disk cannot take (ENOSPC: a 1 MiB tmpfs as the destination, as root): exit 5
 *   (EMFILE and the other failures to write an export take the same way).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktlBin } from './helpers';
import { baseImage, dockerHost, ktlBuild, modes } from './reference';

const dir = mkdtempSync(join(tmpdir(), 'ktl-exit-'));
const mounted: string[] = [];
afterAll(() => {
  for (const m of mounted) spawnSync('umount', [m]);
  rmSync(dir, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;

function context(name: string, dockerfile: string): string {
  const c = join(dir, name);
  mkdirSync(c);
  writeFileSync(join(c, 'Dockerfile'), dockerfile);
  return c;
}

/** A unix socket that passes every connection on to the engine, until dropAll(). */
async function engineProxy(sock: string) {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(dockerHost!.replace('unix://', ''));
    open.add(client);
    open.add(upstream);
    client.pipe(upstream).pipe(client);
    const gone = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', gone).on('close', gone);
    upstream.on('error', gone).on('close', gone);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return {
    dropAll() {
      server.close();
      for (const s of open) s.destroy();
    },
  };
}

describe.each(modes)('exit statuses, ktl $label', (mode) => {
  const tag = mode.sandboxed ? 'sandbox' : 'host';

  mode.gate.test(
    `the builder's connection broken mid-build: exit 6, not 4${mode.gate.why}`,
    async () => {
      const c = context(
        `drop-${tag}`,
        `FROM ${baseImage}\nRUN echo step-started-${tag}-$$ && sleep 30\n`,
      );
      const sock = join(dir, `engine-${tag}.sock`);
      const proxy = await engineProxy(sock);
      const child = spawn(ktlBin, ['build', c, '--no-cache', '--progress', 'plain'], {
        env: {
          ...process.env,
          DOCKER_HOST: `unix://${sock}`,
          BUILDKIT_HOST: '',
          ...mode.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const deadline = Date.now() + 60_000;
      while (!err.includes(`step-started-${tag}`) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(err).toContain(`step-started-${tag}`);
      proxy.dropAll();
      const code = await exited;
      expect([code, err.slice(-600)]).toEqual([6, expect.stringMatching(/^ERROR: /m)]);
    },
    90_000,
  );

  (isRoot ? mode.gate.test : test.skip)(
    `a local export onto a full disk (ENOSPC): exit 5, not 4${mode.gate.why || (isRoot ? '' : ' [skipped: needs root to mount a tmpfs]')}`,
    () => {
      const c = context(
        `full-${tag}`,
        `FROM ${baseImage} AS b\nRUN mkdir /o && head -c 4194304 /dev/zero > /o/big\nFROM scratch\nCOPY --from=b /o /\n`,
      );
      const out = join(dir, `full-${tag}-out`);
      mkdirSync(out);
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', out]).status).toBe(0);
      mounted.push(out);
      const r = ktlBuild([c, '-o', `type=local,dest=${out}`], mode);
      expect([r.code, r.stderr]).toEqual([5, expect.stringContaining('ENOSPC')]);
    },
  );
});
