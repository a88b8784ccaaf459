/**
 * Builders over TLS, on the rig's TLS engine (scripts/rig-tls.sh: a Docker 26.1 reachable only
 * on tcp://127.0.0.1 with mutual TLS, certificates made by the rig with openssl), sandboxed and
 * not, every way the Docker and BuildKit clients spell it: DOCKER_HOST with DOCKER_TLS_VERIFY
 * and DOCKER_CERT_PATH (or the docker config directory), DOCKER_TLS, `--builder docker://tcp://`
 * and BUILDKIT_HOST with buildctl's --tls* flags, a server name override; and `tcp://` to a
 * buildkitd-style endpoint: a TLS server of this test's (the rig's server certificate, client
 * certificates required) passing each verified connection to the rig engine's BuildKit. Each
 * refusal is checked for its message and exit 7, and against the docker CLI where it has the
 * same case. A local export over TLS is compared entry by entry with `docker buildx build` on
 * the same engine.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { diffManifests, treeManifest } from '../../buildkit-client/test/manifest';
import { type KtlResult, readEnvFile } from './helpers';
import { dockerHost, modes, ok } from './reference';
import { runKtl, TLS_ENV, tlsRig, tlsRigDown } from './tls-rig';

const t = tlsRig;
const rig = readEnvFile();
const host = t.KTL_RIG_TLS_HOST ?? '';
const certs = t.KTL_RIG_TLS_CERT_DIR ?? '';
const other = t.KTL_RIG_TLS_OTHER_CERT_DIR ?? '';
const base = rig.KTL_RIG_BASE_IMAGE;
const dockerCli = rig.KTL_RIG_DOCKER_CLI ?? 'docker';

const down = await tlsRigDown();
const skipWhy = down ? ` [skipped: ${down}]` : '';
const tlsTest = down ? test.skip : test;
const engine = `docker://${host}`;
/** The buildkitd-style endpoint serves the rig's server certificate. */
const frontDown =
  down ||
  (t.KTL_RIG_TLS_SERVER_CERT && t.KTL_RIG_TLS_SERVER_KEY
    ? ''
    : `${TLS_ENV} names no server certificate (KTL_RIG_TLS_SERVER_CERT); run scripts/rig-tls.sh up`);
const frontWhy = frontDown ? ` [skipped: ${frontDown}]` : '';
const frontTest = frontDown ? test.skip : test;

const dir = mkdtempSync(join(tmpdir(), 'ktl-tls-'));
const ctx = join(dir, 'ctx');
/** A docker config with no credentials and no certificates. */
const emptyConfig = join(dir, 'docker-config');
mkdirSync(emptyConfig);

/** A tcp:// endpoint that speaks to ktl as buildkitd over TLS would, and which clients it took. */
let front: tls.Server | undefined;
let frontPort = 0;
/** A plain-text Docker API on tcp:// (the rig engine's): the target of TLS against plain. */
let plain: net.Server | undefined;
let plainPort = 0;
const accepted: string[] = [];

/** The rig engine's BuildKit, through its /grpc upgrade (as the engine's own clients reach it). */
function upgradedToRig(onReady: (s: net.Socket) => void, onFail: () => void): void {
  const up = net.connect({ path: (dockerHost ?? '').replace('unix://', '') });
  let head = Buffer.alloc(0);
  const onData = (d: Buffer) => {
    head = Buffer.concat([head, d]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    up.off('data', onData);
    if (!head.subarray(0, end).toString('latin1').startsWith('HTTP/1.1 101')) {
      up.destroy();
      return onFail();
    }
    up.pause();
    if (end + 4 < head.length) up.unshift(head.subarray(end + 4));
    onReady(up);
  };
  up.on('data', onData);
  up.on('error', onFail);
  up.write(
    'POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n',
  );
}

beforeAll(async () => {
  mkdirSync(ctx);
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `FROM ${base}\nCOPY f /f\nRUN cat /f > /out && ls /bin | head -3 > /bins\n`,
  );
  writeFileSync(join(ctx, 'f'), 'over mutual TLS\n');
  if (frontDown) return;
  front = tls.createServer(
    {
      cert: readFileSync(t.KTL_RIG_TLS_SERVER_CERT!),
      key: readFileSync(t.KTL_RIG_TLS_SERVER_KEY!),
      ca: readFileSync(join(certs, 'ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (client) => {
      accepted.push(String(client.getPeerCertificate().subject?.CN));
      upgradedToRig(
        (up) => {
          client.pipe(up).pipe(client);
          up.resume();
          client.on('error', () => up.destroy());
          up.on('error', () => client.destroy());
          client.on('close', () => up.destroy());
          up.on('close', () => client.destroy());
        },
        () => client.destroy(),
      );
    },
  );
  front.on('tlsClientError', () => {});
  plain = net.createServer((client) => {
    const up = net.connect({ path: (dockerHost ?? '').replace('unix://', '') });
    client.pipe(up).pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => front!.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => plain!.listen(0, '127.0.0.1', r));
  frontPort = (front.address() as net.AddressInfo).port;
  plainPort = (plain.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await Promise.all(
    [front, plain].map((s) => new Promise<void>((r) => (s ? s.close(() => r()) : r()))),
  );
  rmSync(dir, { recursive: true, force: true });
});

/** Names only where the TLS variables are: the test's own, never the machine's. */
const CLEAN = {
  DOCKER_HOST: '',
  BUILDKIT_HOST: '',
  DOCKER_TLS: '',
  DOCKER_TLS_VERIFY: '',
  DOCKER_CERT_PATH: '',
  DOCKER_CONFIG: emptyConfig,
  KTL_STATE_DIR: join(dir, 'state'),
};
const dockerTls = { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs };

/** `ktl ARGS` with the test's clean environment and `env`. */
const run = (args: string[], env: Record<string, string>) => runKtl(args, { ...CLEAN, ...env });

const host1 = { KTL_SANDBOX_DISABLE: '1' };
/** A cache-only build (no output): enough to show the builder was reached and built. */
const cacheOnly = (env: Record<string, string>, ...flags: string[]) =>
  run(['build', ctx, '--progress', 'plain', ...flags], { ...host1, ...env });

/** A cert directory of the given files, taken from the rig's sets. */
function certDir(name: string, files: Record<string, string>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [to, from] of Object.entries(files)) cpSync(from, join(d, to));
  return d;
}

/** What the docker CLI says to `version` with this environment: 0 and the server, or the error. */
function dockerVersion(env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync(dockerCli, ['version', '--format', '{{.Server.Version}}'], {
    env: { ...process.env, ...CLEAN, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, out: (r.stdout + r.stderr).trim() };
}

const expectTls = (r: KtlResult, message: RegExp, hint: RegExp) => {
  expect([r.code, r.stderr]).toEqual([7, expect.stringMatching(message)]);
  expect(r.stderr).toMatch(hint);
};

describe.each(modes)('a build over TLS, ktl $label', (mode) => {
  const g = down ? { test: test.skip, why: skipWhy } : mode.gate;
  const env = { ...mode.env, ...(mode.sandboxed ? { KTL_SANDBOX_DISABLE: '' } : {}) };

  g.test(
    `DOCKER_HOST=tcp:// with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: a local export, entry by entry what docker buildx writes on the same engine${g.why}`,
    async () => {
      const out = join(dir, `docker-env-${mode.sandboxed}`);
      const r = await run(
        ['build', ctx, '-o', `type=local,dest=${out}`, '--progress', 'plain', '--sandbox-logs'],
        { ...env, ...dockerTls },
      );
      expect([r.code, r.stderr.slice(-2000)]).toEqual([0, expect.any(String)]);
      expect(r.stderr).toContain(`#0 building with ${engine}`);
      expect(readFileSync(join(out, 'out'), 'utf8')).toBe('over mutual TLS\n');
      if (mode.sandboxed) {
        expect(r.stderr).toContain('Running ktl build inside the sandbox');
        // The client key stays out here: nothing of the certificate directory is bound.
        const binds = r.stderr.split('\n').filter((l) => l.startsWith('[sandbox] bind '));
        expect(binds.length).toBeGreaterThan(0);
        expect(binds.filter((l) => l.includes(certs))).toEqual([]);
      }
      const theirs = join(dir, `buildx-${mode.sandboxed}`);
      // Through the docker CLI: the plugin binary run alone ignores DOCKER_TLS_VERIFY.
      const bx = spawnSync(
        dockerCli,
        ['buildx', 'build', '--progress=plain', '-o', `type=local,dest=${theirs}`, ctx],
        {
          env: { ...process.env, ...CLEAN, ...dockerTls, DOCKER_CONFIG: rig.KTL_RIG_DOCKER_CONFIG },
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      ok({ code: bx.status, stdout: bx.stdout, stderr: bx.stderr }, 'docker buildx build');
      // ktl's local export sets times through utimes (seconds as a double: to about a
      // microsecond; the session code's): times are compared to 2 µs, everything else exactly.
      const ours = treeManifest(out);
      const ref = treeManifest(theirs);
      expect(diffManifests(ours, ref, { ignore: ['mtimeNs'] }, ['ktl', 'buildx'])).toEqual([]);
      const offBy = [...ours]
        .map(([p, e]) => [p, BigInt(e.mtimeNs) - BigInt(ref.get(p)?.mtimeNs ?? 0)] as const)
        .filter(([, d]) => d > 2000n || d < -2000n);
      expect(offBy).toEqual([]);
    },
    120_000,
  );

  g.test(
    `--builder docker://tcp:// with --tlscacert, --tlscert and --tlskey, no Docker variables${g.why}`,
    async () => {
      const out = join(dir, `flags-${mode.sandboxed}`);
      const r = await run(
        [
          'build',
          ctx,
          '--builder',
          engine,
          '--tlscacert',
          join(certs, 'ca.pem'),
          '--tlscert',
          join(certs, 'cert.pem'),
          '--tlskey',
          join(certs, 'key.pem'),
          '-o',
          `type=local,dest=${out}`,
        ],
        env,
      );
      expect([r.code, r.stderr.slice(-2000)]).toEqual([0, expect.any(String)]);
      expect(readFileSync(join(out, 'out'), 'utf8')).toBe('over mutual TLS\n');
    },
    90_000,
  );

  const gf = frontDown && !g.why ? { test: test.skip, why: frontWhy } : g;
  gf.test(
    `BUILDKIT_HOST=tcp:// (buildkitd over TLS) with --tlsdir: the client certificate is presented${gf.why}`,
    async () => {
      const out = join(dir, `buildkitd-${mode.sandboxed}`);
      const before = accepted.length;
      const r = await run(['build', ctx, '--tlsdir', certs, '-o', `type=local,dest=${out}`], {
        ...env,
        BUILDKIT_HOST: `tcp://127.0.0.1:${frontPort}`,
      });
      expect([r.code, r.stderr.slice(-2000)]).toEqual([0, expect.any(String)]);
      expect(readFileSync(join(out, 'out'), 'utf8')).toBe('over mutual TLS\n');
      expect(accepted.slice(before)).toContain('ktl rig TLS client');
    },
    90_000,
  );

  g.test(
    `plain text against the TLS port is refused with exit 7, saying how to give TLS${g.why}`,
    async () => {
      const r = await run(['build', ctx], { ...env, DOCKER_HOST: host });
      expectTls(
        r,
        new RegExp(`the builder at ${engine} speaks TLS and ktl connected without it`),
        /hint: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH/,
      );
    },
    60_000,
  );
});

describe('TLS as the docker CLI reads it (the same environment given to docker version)', () => {
  const mixed = () =>
    certDir('mixed', {
      'ca.pem': join(other, 'ca.pem'),
      'cert.pem': join(certs, 'cert.pem'),
      'key.pem': join(certs, 'key.pem'),
    });

  tlsTest(
    `DOCKER_TLS_VERIFY=0 still verifies (any value does), DOCKER_TLS=1 encrypts without verifying${skipWhy}`,
    async () => {
      const d = mixed();
      const verify0 = { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '0', DOCKER_CERT_PATH: d };
      expect(dockerVersion(verify0).out).toMatch(/certificate signed by unknown authority/);
      expectTls(
        await cacheOnly(verify0),
        new RegExp(`did not sign \\(DOCKER_TLS_VERIFY=0, DOCKER_CERT_PATH=${d}\\)`),
        /hint: use the CA certificate that signed the builder's certificate/,
      );
      const noVerify = { DOCKER_HOST: host, DOCKER_TLS: '1', DOCKER_CERT_PATH: d };
      expect(dockerVersion(noVerify).code).toBe(0);
      const r = await cacheOnly(noVerify);
      expect([r.code, r.stderr.slice(-1500)]).toEqual([0, expect.any(String)]);
    },
    60_000,
  );

  tlsTest(
    `without DOCKER_CERT_PATH the files are the docker config directory's: $DOCKER_CONFIG, else ~/.docker${skipWhy}`,
    async () => {
      const config = certDir('config-with-certs', {
        'ca.pem': join(certs, 'ca.pem'),
        'cert.pem': join(certs, 'cert.pem'),
        'key.pem': join(certs, 'key.pem'),
      });
      const byConfig = { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: config };
      expect(dockerVersion(byConfig).code).toBe(0);
      expect((await cacheOnly(byConfig)).code).toBe(0);
      const home = join(dir, 'home');
      certDir(join('home', '.docker'), {
        'ca.pem': join(certs, 'ca.pem'),
        'cert.pem': join(certs, 'cert.pem'),
        'key.pem': join(certs, 'key.pem'),
      });
      const byHome = { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: '', HOME: home };
      expect(dockerVersion(byHome).code).toBe(0);
      expect((await cacheOnly(byHome)).code).toBe(0);
    },
    60_000,
  );

  tlsTest(
    `refused with exit 7: no ca.pem, no client certificate, a client certificate the engine does not trust${skipWhy}`,
    async () => {
      const noCa = certDir('no-ca', {
        'cert.pem': join(certs, 'cert.pem'),
        'key.pem': join(certs, 'key.pem'),
      });
      const env1 = { ...dockerTls, DOCKER_CERT_PATH: noCa };
      expect(dockerVersion(env1).out).toMatch(/ca\.pem: no such file/);
      expectTls(
        await cacheOnly(env1),
        new RegExp(`cannot read the CA certificate ${noCa}/ca.pem \\(ENOENT\\)`),
        /hint: put the CA certificate there/,
      );
      const onlyCa = certDir('only-ca', { 'ca.pem': join(certs, 'ca.pem') });
      const env2 = { ...dockerTls, DOCKER_CERT_PATH: onlyCa };
      expect(dockerVersion(env2).out).toMatch(/certificate required/);
      expectTls(
        await cacheOnly(env2),
        new RegExp(
          `requires a client certificate and ktl has none to give \\(DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH=${onlyCa}: no cert.pem and key.pem there`,
        ),
        /hint: put the client certificate and key the engine trusts in DOCKER_CERT_PATH/,
      );
      const stranger = certDir('stranger', {
        'ca.pem': join(certs, 'ca.pem'),
        'cert.pem': join(other, 'cert.pem'),
        'key.pem': join(other, 'key.pem'),
      });
      expectTls(
        await cacheOnly({ ...dockerTls, DOCKER_CERT_PATH: stranger }),
        new RegExp(`refused the client certificate ${stranger}/cert.pem`),
        /hint: use a client certificate signed by a CA the builder trusts/,
      );
    },
    60_000,
  );
});

describe('buildctl-style TLS flags and addresses', () => {
  tlsTest(
    `--tlsservername: the name in the certificate passes, another is refused naming the certificate's names${skipWhy}`,
    async () => {
      const named = await cacheOnly(
        {},
        '--builder',
        engine,
        '--tlsdir',
        certs,
        '--tlsservername',
        t.KTL_RIG_TLS_SERVER_NAME ?? '',
      );
      expect([named.code, named.stderr.slice(-1500)]).toEqual([0, expect.any(String)]);
      expectTls(
        await cacheOnly(
          {},
          '--builder',
          engine,
          '--tlsdir',
          certs,
          '--tlsservername',
          'wrong.test',
        ),
        /presented a certificate for other names .*wrong\.test.* is not in the cert's altnames: IP Address:127\.0\.0\.1, DNS:localhost/,
        /hint: connect by a name the certificate holds, or give that name with --tlsservername/,
      );
    },
    60_000,
  );

  frontTest(
    `tcp:// refusals, exit 7: plain text against TLS, a wrong CA, a Docker engine's TLS port, TLS against plain text${frontWhy}`,
    async () => {
      const bk = `tcp://127.0.0.1:${frontPort}`;
      expectTls(
        await cacheOnly({ BUILDKIT_HOST: bk }),
        new RegExp(`the builder at ${bk} speaks TLS and ktl connected without it`),
        /hint: give --tlscacert, --tlscert and --tlskey \(or --tlsdir DIR\), as for buildctl/,
      );
      expectTls(
        await cacheOnly({ BUILDKIT_HOST: bk }, '--tlsdir', other),
        new RegExp(`did not sign \\(--tlsdir ${other}\\)`),
        /hint: use the CA certificate that signed/,
      );
      expectTls(
        await cacheOnly({}, '--builder', host, '--tlsdir', certs),
        /speaks TLS but not gRPC's HTTP\/2/,
        new RegExp(`hint: an HTTP/1.1 server there is likely a Docker engine: use ${engine}`),
      );
      expectTls(
        await cacheOnly(
          {},
          '--builder',
          `docker://tcp://127.0.0.1:${plainPort}`,
          '--tlsdir',
          certs,
        ),
        /does not speak TLS: the handshake was answered with something else/,
        /hint: use the builder's TLS port, or drop the TLS settings/,
      );
    },
    60_000,
  );

  tlsTest(
    `a TLS failure ends the search: no other builder is tried instead (build and builder ls)${skipWhy}`,
    async () => {
      // The rig engine answers as DOCKER_HOST, after BUILDKIT_HOST's failing TLS engine.
      const env = { BUILDKIT_HOST: engine, DOCKER_HOST: dockerHost ?? '' };
      expectTls(
        await cacheOnly(env),
        new RegExp(`^ERROR: BUILDKIT_HOST: TLS: the builder at ${engine} speaks TLS`, 'm'),
        /hint: set DOCKER_TLS_VERIFY=1/,
      );
      const ls = await run(['builder', 'ls', '--json'], env);
      expect(ls.code).toBe(7);
      const j = JSON.parse(ls.stdout) as { candidates: { source: string; status: string }[] };
      expect(j.candidates.slice(0, 2).map((c) => [c.source, c.status])).toEqual([
        ['BUILDKIT_HOST', 'tls-failed'],
        ['DOCKER_HOST', 'answers'],
      ]);
    },
    60_000,
  );

  test('contradicting or pointless TLS flags are usage errors (exit 2), before any builder is asked', async () => {
    const dirAndFile = await cacheOnly({}, '--tlsdir', certs || dir, '--tlscert', 'x.pem');
    expect([dirAndFile.code, dirAndFile.stderr]).toEqual([
      2,
      expect.stringContaining(
        'ERROR: --tlsdir: cannot be given with --tlscacert, --tlscert or --tlskey',
      ),
    ]);
    const half = await cacheOnly({}, '--tlscert', 'x.pem');
    expect([half.code, half.stderr]).toEqual([
      2,
      expect.stringContaining('--tlscert: needs --tlskey'),
    ]);
    const unix = await cacheOnly({}, '--builder', 'unix:///nowhere.sock', '--tlsdir', certs || dir);
    expect([unix.code, unix.stderr]).toEqual([
      2,
      expect.stringContaining(
        'the TLS flags (--tlscacert, --tlscert, --tlskey, --tlsdir, --tlsservername) are for a builder on tcp://',
      ),
    ]);
    const nameOnly = await cacheOnly(
      {},
      '--builder',
      'docker://tcp://127.0.0.1:9',
      '--tlsservername',
      'x.test',
    );
    expect([nameOnly.code, nameOnly.stderr]).toEqual([
      2,
      expect.stringContaining(
        '--tlsservername x.test names the server of a TLS connection, and nothing sets up TLS',
      ),
    ]);
  }, 60_000);
});

describe('ktl builder ls over TLS', () => {
  tlsTest(
    `lists DOCKER_HOST with its TLS selected, and --builder with the --tls* flags${skipWhy}`,
    async () => {
      const r = await run(['builder', 'ls', '--json'], dockerTls);
      expect([r.code, r.stderr]).toEqual([0, '']);
      const j = JSON.parse(r.stdout) as {
        candidates: { source: string; address: string; status: string }[];
        selected: { source: string; address: string; transport: string; engineApiVersion: string };
      };
      expect(j.candidates[0]).toMatchObject({
        source: 'DOCKER_HOST',
        address: engine,
        status: 'selected',
      });
      expect(j.selected).toMatchObject({
        source: 'DOCKER_HOST',
        address: engine,
        transport: 'engine-upgrade',
        engineApiVersion: t.KTL_RIG_TLS_API,
      });
      const f = await run(
        [
          'builder',
          'ls',
          '--builder',
          engine,
          '--tlsdir',
          certs,
          '--tlsservername',
          t.KTL_RIG_TLS_SERVER_NAME ?? '',
        ],
        {},
      );
      expect([f.code, f.stdout]).toEqual([
        0,
        expect.stringMatching(new RegExp(`selected: +${engine} \\(--builder\\)`)),
      ]);
      const refused = await run(['builder', 'ls', '--builder', engine, '--tlsdir', other], {});
      expect([refused.code, refused.stderr]).toEqual([7, expect.stringContaining('did not sign')]);
    },
    60_000,
  );
});
