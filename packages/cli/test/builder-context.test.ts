/**
 * Docker contexts, made with the real `docker context create` against a private DOCKER_CONFIG:
 * the context in use is chosen as the docker CLI chooses it (--context, DOCKER_HOST winning
 * over any context, DOCKER_CONTEXT, currentContext in config.json; `docker context show` is
 * asked the same question beside ktl), and its endpoint and TLS material, from the docker CLI's
 * store, reach the rig's TLS engine (scripts/rig-tls.sh), on the host and in the sandbox.
 * `ktl builder ls` lists the context as a candidate with its source; each refusal has its
 * message and exit status.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readEnvFile } from './helpers';
import { dockerHost, modes } from './reference';
import { runKtl, tlsRig, tlsRigDown } from './tls-rig';

const rig = readEnvFile();
const dockerCli = rig.KTL_RIG_DOCKER_CLI ?? 'docker';
const host = tlsRig.KTL_RIG_TLS_HOST ?? '';
const certs = tlsRig.KTL_RIG_TLS_CERT_DIR ?? '';
const engine = `docker://${host}`;
const down = await tlsRigDown();
const skipWhy = down ? ` [skipped: ${down}]` : '';
const tlsTest = down ? test.skip : test;

const dir = mkdtempSync(join(tmpdir(), 'ktl-ctx-'));
const config = join(dir, 'docker-config');
const ctx = join(dir, 'ctx');

function docker(...args: string[]): string {
  const r = spawnSync(dockerCli, args, {
    env: { ...process.env, DOCKER_CONFIG: config, DOCKER_HOST: '', DOCKER_CONTEXT: '' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

beforeAll(() => {
  mkdirSync(config);
  mkdirSync(ctx);
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `FROM ${rig.KTL_RIG_BASE_IMAGE}\nCOPY f /f\nRUN cat /f > /out\n`,
  );
  writeFileSync(join(ctx, 'f'), 'through a docker context\n');
  if (down) return;
  const pem = (f: string) => join(certs, f);
  docker(
    'context',
    'create',
    'remote-tls',
    '--docker',
    `host=${host},ca=${pem('ca.pem')},cert=${pem('cert.pem')},key=${pem('key.pem')}`,
  );
  // Encrypted, the server not verified, and no client certificate: the engine refuses it.
  docker('context', 'create', 'no-client-cert', '--docker', `host=${host},skip-tls-verify=true`);
  docker('context', 'create', 'rig-socket', '--docker', `host=${dockerHost}`);
  docker('context', 'create', 'over-ssh', '--docker', 'host=ssh://builder@127.0.0.1');
  docker('context', 'use', 'remote-tls');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLEAN = {
  DOCKER_HOST: '',
  BUILDKIT_HOST: '',
  DOCKER_CONTEXT: '',
  DOCKER_TLS: '',
  DOCKER_TLS_VERIFY: '',
  DOCKER_CERT_PATH: '',
  DOCKER_CONFIG: config,
  KTL_STATE_DIR: join(dir, 'state'),
};
const run = (args: string[], env: Record<string, string> = {}) =>
  runKtl(args, { ...CLEAN, ...env });
const onHost = { KTL_SANDBOX_DISABLE: '1' };

/** The context the docker CLI uses with this environment. */
const dockerShows = (env: Record<string, string>) =>
  spawnSync(dockerCli, ['context', 'show'], {
    env: { ...process.env, ...CLEAN, ...env },
    encoding: 'utf8',
  }).stdout.trim();

interface Listing {
  candidates: { source: string; address: string; status: string; reason?: string }[];
  selected: { source: string; address: string } | null;
}
const ls = async (args: string[], env: Record<string, string> = {}) => {
  const r = await run(['builder', 'ls', '--json', ...args], env);
  return { code: r.code, stderr: r.stderr, list: JSON.parse(r.stdout || 'null') as Listing };
};

describe.each(modes)('a build through the current docker context, ktl $label', (mode) => {
  const g = down ? { test: test.skip, why: skipWhy } : mode.gate;
  g.test(
    `currentContext (set by docker context use): its tcp:// endpoint and TLS material${g.why}`,
    async () => {
      expect(dockerShows({})).toBe('remote-tls');
      const out = join(dir, `out-${mode.sandboxed}`);
      const r = await run(['build', ctx, '-o', `type=local,dest=${out}`, '--progress', 'plain'], {
        ...mode.env,
        ...(mode.sandboxed ? { KTL_SANDBOX_DISABLE: '' } : {}),
      });
      expect([r.code, r.stderr.slice(-2000)]).toEqual([0, expect.any(String)]);
      expect(r.stderr).toContain(`#0 building with ${engine}`);
      expect(readFileSync(join(out, 'out'), 'utf8')).toBe('through a docker context\n');
    },
    90_000,
  );
});

describe('which docker context, as the docker CLI picks it', () => {
  tlsTest(
    `builder ls lists the context with its source; DOCKER_CONTEXT over currentContext, --context over both, DOCKER_HOST over any context${skipWhy}`,
    async () => {
      const current = await ls([]);
      expect(current.code).toBe(0);
      expect(current.list.candidates[0]).toMatchObject({
        source: `docker context remote-tls (currentContext in ${join(config, 'config.json')})`,
        address: engine,
        status: 'selected',
      });

      const env = { DOCKER_CONTEXT: 'rig-socket' };
      expect(dockerShows(env)).toBe('rig-socket');
      const byEnv = await ls([], env);
      expect(byEnv.list.selected).toEqual(
        expect.objectContaining({
          source: 'docker context rig-socket (DOCKER_CONTEXT)',
          address: `docker://${dockerHost}`,
        }),
      );

      // --context names the builder: only it is looked at.
      const byFlag = await ls(['--context', 'remote-tls'], env);
      expect(byFlag.list.candidates.map((c) => [c.source, c.status])).toEqual([
        ['docker context remote-tls (--context)', 'selected'],
      ]);

      const hostEnv = { DOCKER_HOST: dockerHost ?? '', DOCKER_CONTEXT: 'remote-tls' };
      expect(dockerShows(hostEnv)).toBe('default');
      const byHost = await ls([], hostEnv);
      expect(byHost.list.candidates.map((c) => c.source)).not.toContainEqual(
        expect.stringContaining('docker context'),
      );
      expect(byHost.list.selected?.source).toBe('DOCKER_HOST');
    },
    60_000,
  );

  tlsTest(
    `--context on ktl build, and --context default (DOCKER_HOST, else the default socket)${skipWhy}`,
    async () => {
      const r = await run(['build', ctx, '--context', 'rig-socket', '--progress', 'plain'], onHost);
      expect([r.code, r.stderr]).toEqual([
        0,
        expect.stringContaining(`#0 building with docker://${dockerHost}`),
      ]);
      const dflt = await ls(['--context', 'default'], { DOCKER_HOST: dockerHost ?? '' });
      expect(dflt.list.candidates.map((c) => [c.source, c.address, c.status])).toEqual([
        ['docker context default (--context)', `docker://${dockerHost}`, 'selected'],
      ]);
    },
    60_000,
  );

  tlsTest(
    `refused: a context that does not exist (exit 2), one without the client certificate its engine wants (exit 7), one over ssh (exit 2), --context with --builder (exit 2)${skipWhy}`,
    async () => {
      const missing = await run(['build', ctx], { ...onHost, DOCKER_CONTEXT: 'nope' });
      expect([missing.code, missing.stderr]).toEqual([
        2,
        expect.stringContaining(
          `ERROR: docker context "nope" (DOCKER_CONTEXT) does not exist: no ${join(config, 'contexts', 'meta')}/`,
        ),
      ]);
      expect(missing.stderr).toContain('hint: `docker context ls` lists the contexts');

      const noCert = await run(['build', ctx, '--context', 'no-client-cert'], onHost);
      expect([noCert.code, noCert.stderr]).toEqual([
        7,
        expect.stringContaining(
          `ERROR: docker context no-client-cert (--context): TLS: the builder at ${engine} requires a client certificate and ktl has none to give (docker context "no-client-cert"`,
        ),
      ]);
      expect(noCert.stderr).toContain('hint: give the context the client certificate and key');

      const ssh = await run(['build', ctx], { ...onHost, DOCKER_CONTEXT: 'over-ssh' });
      expect([ssh.code, ssh.stderr]).toEqual([
        2,
        expect.stringContaining(
          'ERROR: docker context over-ssh (DOCKER_CONTEXT): its endpoint ssh://builder@127.0.0.1 is reached over ssh, which ktl does not do',
        ),
      ]);

      const both = await run(
        ['build', ctx, '--context', 'remote-tls', '--builder', engine],
        onHost,
      );
      expect([both.code, both.stderr]).toEqual([
        2,
        expect.stringContaining('--context "remote-tls": cannot be given with --builder'),
      ]);
      const lsBoth = await run(['builder', 'ls', '--context', 'remote-tls', '--builder', engine]);
      expect([lsBoth.code, lsBoth.stderr]).toEqual([
        2,
        expect.stringContaining('name two builders'),
      ]);
    },
    60_000,
  );
});
