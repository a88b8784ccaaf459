/**
 * Registry credentials in a sandboxed `ktl build` never enter the jail's filesystem: the daemon
 * asks the jailed ktl's session, the jailed ktl relays each call through the gateway, and the
 * outer ktl answers from the user's docker config. End to end on the rig's engine and registry
 * (behind a front that wants Basic auth) with real bubblewrap; ktl runs with a TMPDIR of its
 * own, so everything it leaves under os.tmpdir() — the jail's private directory included — is
 * watched during the build and looked through afterwards, also after a SIGKILL mid-build.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type KtlResult, ktlBin, readEnvFile } from './helpers';

const rigEnv = '/var/lib/ktl-rig/env';
const rig = readEnvFile(rigEnv);
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const registry = rig.KTL_RIG_REGISTRY;
const base = rig.KTL_RIG_BASE_IMAGE;
const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
const why =
  dockerHost === undefined || !existsSync(dockerHost.replace('unix://', '')) || !registry || !base
    ? ` [skipped: the BuildKit rig is not up (${rigEnv}); run scripts/rig.sh up]`
    : bwrap === ''
      ? ' [skipped: bwrap is not installed]'
      : '';
const rigTest = why === '' ? test : test.skip;

const dir = mkdtempSync(join(tmpdir(), 'ktl-sbx-auth-'));
const user = 'ktl';
const secret = `s3cret-${randomBytes(8).toString('hex')}`;
const basic = `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
/** What a credential on disk would contain: the secret, or the docker config's auth field. */
const marks = [secret, Buffer.from(`${user}:${secret}`).toString('base64')];
const uniq = () => randomBytes(4).toString('hex');
const docker = (...args: string[]) =>
  spawnSync(rig.KTL_RIG_DOCKER_CLI || 'docker', ['-H', dockerHost ?? '', ...args], {
    encoding: 'utf8',
  });
const made: string[] = [];

// A registry front that wants Basic auth (401 + challenge), then proxies to the rig's.
const seen: string[] = [];
let server: http.Server | undefined;
let front = '';
beforeAll(async () => {
  if (why !== '') return;
  const [rh, rp] = (registry ?? '').split(':');
  server = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seen.push(auth === '' ? 'anonymous' : auth);
    if (auth !== basic) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="ktl-test"' });
      res.end();
      return;
    }
    const up = http.request(
      { host: rh, port: Number(rp), method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  front = `127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  if (made.length > 0) docker('image', 'rm', '-f', ...made);
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((r) => server?.close(() => r()));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A docker config with the front's credentials (outside ktl's TMPDIR). */
function credentials(): string {
  const cfg = join(dir, `docker-config-${uniq()}`);
  mkdirSync(cfg);
  writeFileSync(
    join(cfg, 'config.json'),
    JSON.stringify({
      auths: { [front]: { auth: Buffer.from(`${user}:${secret}`).toString('base64') } },
    }),
  );
  return cfg;
}

function context(files: Record<string, string>): string {
  const d = join(dir, `ctx-${uniq()}`);
  mkdirSync(d);
  for (const [p, body] of Object.entries(files)) writeFileSync(join(d, p), body);
  return d;
}

interface Finding {
  path: string;
  why: string;
}

/**
 * Everything under `root` that is a credential: a config.json, or a readable file holding the
 * secret. Also the jail private directories seen (ktl-sandbox-*), to show the look was real.
 */
function look(root: string, jails: Set<string>): Finding[] {
  const found: Finding[] = [];
  const walk = (d: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return; // gone meanwhile, or not ours to read
    }
    for (const name of names) {
      const p = join(d, name);
      if (depth === 0 && name.startsWith('ktl-sandbox-')) jails.add(p);
      if (name === 'config.json') found.push({ path: p, why: 'a config.json' });
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (depth < 8) walk(p, depth + 1);
      } else if (st.isFile() && st.size < 4 * 1024 * 1024) {
        let text = '';
        try {
          text = readFileSync(p, 'latin1');
        } catch {
          continue;
        }
        if (marks.some((m) => text.includes(m)))
          found.push({ path: p, why: 'holds the registry secret' });
      }
    }
  };
  walk(root, 0);
  return found;
}

interface Watched {
  child: ChildProcess;
  done: Promise<KtlResult>;
  stderrSoFar: () => string;
  /** Stops the polling; what it found, and the jail directories it saw. */
  stop: () => { found: Finding[]; jails: Set<string> };
}

/** `ktl build` with a TMPDIR of its own, polled every 20 ms for credentials on disk. */
function watchedBuild(args: string[], env: Record<string, string>): Watched {
  const tmp = mkdtempSync(join(dir, 'tmp-'));
  const child = spawn(ktlBin, ['build', ...args], {
    env: {
      ...process.env,
      DOCKER_HOST: dockerHost ?? '',
      BUILDKIT_HOST: '',
      KTL_SANDBOX_DISABLE: '',
      KTL_SANDBOX_CONFIG: '',
      TMPDIR: tmp,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const found = new Map<string, Finding>();
  const note = () => {
    for (const f of look(tmp, jails)) found.set(`${f.why}: ${f.path}`, f);
  };
  const jails = new Set<string>();
  const poll = setInterval(note, 20);
  const done = new Promise<KtlResult>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return {
    child,
    done,
    stderrSoFar: () => stderr,
    stop: () => {
      clearInterval(poll);
      // Once more, after the end: what is left behind.
      note();
      return { found: [...found.values()], jails };
    },
  };
}

const asked = (host: string, answer: 'given' | 'none') =>
  new RegExp(
    `^\\[sandbox\\] registry credentials asked for ${host.replace(/[.]/g, '\\.')}: ${answer}$`,
    'm',
  );

describe('registry credentials in a sandboxed build', () => {
  rigTest(
    `push to and pull from a registry that wants auth: answered from outside, never on disk in the jail's reach${why}`,
    async () => {
      const cfg = credentials();
      const ref = `${front}/ktltest/sbx-authed:${uniq()}`;
      made.push(ref);
      const marker = `pushed-${uniq()}`;
      const ctx = context({ Dockerfile: `FROM ${base}\nRUN echo ${marker} > /marker\n` });

      const push = watchedBuild([ctx, '-t', ref, '--push', '--sandbox-logs'], {
        DOCKER_CONFIG: cfg,
      });
      const pushed = await push.done;
      const pushLook = push.stop();
      expect(pushed.stderr).toMatch(/^Running ktl build inside the sandbox \(/m);
      expect(pushed.stderr).not.toContain('ERROR');
      expect(pushed.code).toBe(0);
      expect(pushed.stderr).toMatch(asked(front, 'given'));
      expect(pushed.stderr).not.toContain('registry credentials handed in');
      // Only the hosts the daemon asked about: the base image's registry wants nothing, and
      // the front is asked once, however often the daemon calls.
      expect(pushed.stderr.split('\n').filter((l) => asked(front, 'given').test(l))).toHaveLength(
        1,
      );
      expect(seen).toContain(basic);
      expect(pushLook.jails.size).toBe(1);
      expect(pushLook.found).toEqual([]);

      // Not from the engine's store: removed there, --pull must fetch it through the front.
      docker('image', 'rm', '-f', ref);
      const out = join(dir, `pull-out-${uniq()}`);
      const ctx2 = context({ Dockerfile: `FROM ${ref}\nRUN cat /marker > /seen\n` });
      const pull = watchedBuild([ctx2, '--pull', '-o', out, '--sandbox-logs'], {
        DOCKER_CONFIG: cfg,
      });
      const pulled = await pull.done;
      const pullLook = pull.stop();
      expect(pulled.stderr).not.toContain('ERROR');
      expect(pulled.code).toBe(0);
      expect(readFileSync(join(out, 'seen'), 'utf8')).toBe(`${marker}\n`);
      expect(pulled.stderr).toMatch(asked(front, 'given'));
      expect(pullLook.jails.size).toBe(1);
      expect(pullLook.found).toEqual([]);

      // The same pull with no credentials outside: the daemon gets none, the registry says no.
      const empty = join(dir, `docker-config-empty-${uniq()}`);
      mkdirSync(empty);
      const anon = watchedBuild(
        [ctx2, '--pull', '-o', join(dir, `anon-${uniq()}`), '--sandbox-logs'],
        { DOCKER_CONFIG: empty },
      );
      const denied = await anon.done;
      anon.stop();
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toMatch(asked(front, 'none'));
      expect(denied.stderr).toMatch(/401 Unauthorized|unauthorized|authoriz/i);
    },
    240_000,
  );

  rigTest(
    `a SIGKILL of the outer ktl mid-build leaves no credential under its os.tmpdir()${why}`,
    async () => {
      const cfg = credentials();
      const ref = `${front}/ktltest/sbx-killed:${uniq()}`;
      made.push(ref);
      // Something to pull through the front (the daemon asks for its credentials), pushed
      // there by ktl on the host; then a step that runs long enough to be killed in.
      // (Not spawnSync: the front is served by this process's event loop.)
      const host = watchedBuild([context({ Dockerfile: `FROM ${base}\n` }), '-t', ref, '--push'], {
        KTL_SANDBOX_DISABLE: '1',
        DOCKER_CONFIG: cfg,
      });
      const r0 = await host.done;
      host.stop();
      expect(r0.stderr).not.toContain('ERROR');
      expect(r0.code).toBe(0);
      docker('image', 'rm', '-f', ref);
      const ctx = context({
        Dockerfile: `FROM ${ref}\nRUN echo started-${uniq()} && sleep 120\n`,
      });
      const b = watchedBuild(
        [
          ctx,
          '--pull',
          '--progress',
          'plain',
          '-o',
          join(dir, `killed-${uniq()}`),
          '--sandbox-logs',
        ],
        { DOCKER_CONFIG: cfg },
      );
      // Killed once the credentials were asked and answered and the long step runs.
      const deadline = Date.now() + 120_000;
      while (
        !(asked(front, 'given').test(b.stderrSoFar()) && /RUN echo started-/.test(b.stderrSoFar()))
      ) {
        if (Date.now() > deadline || b.child.exitCode !== null)
          throw new Error(`the build never got to its long step:\n${b.stderrSoFar()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300));
      b.child.kill('SIGKILL');
      const r = await b.done;
      expect(r.code).toBeNull(); // killed, not exited
      // The jail goes with its parent (bubblewrap --die-with-parent); give it a moment.
      await new Promise((res) => setTimeout(res, 500));
      const left = b.stop();
      expect(left.found).toEqual([]);
      // What ktl left (its teardown never ran) was looked through: the jail's private dir.
      expect(left.jails.size).toBe(1);
      const [jailDir] = [...left.jails];
      expect(existsSync(jailDir!)).toBe(true);
      expect(readdirSync(jailDir!).sort()).not.toContain('docker');
      rmSync(jailDir!, { recursive: true, force: true });
    },
    240_000,
  );
});
