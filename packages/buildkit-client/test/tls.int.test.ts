/**
 * `tcp://` with TLS, for real: a TLS endpoint that demands a client certificate from a test CA
 * (made with openssl here) and forwards each verified connection to the rig engine's BuildKit
 * (through its /grpc upgrade). ktl must verify the server by name, present its certificate,
 * and run a whole build (session included) over it.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { BuildkitError, connect, parseAddress, solveDockerfile } from '../src/index';
import { dialRaw, httpUpgrade } from '../src/transport/upgrade';
import { probeRig, skipReason } from './rig';

const probe = await probeRig();
const base = probe.ok ? probe.rig.baseImage : undefined;
const openssl = spawnSync('openssl', ['version']).status === 0;
const ready = probe.ok && base !== undefined && openssl;
const rigTest = ready ? test : test.skip;
const why = openssl ? skipReason(probe) : ' [skipped: no openssl to make the test CA]';

let work: string;
let server: tls.Server | undefined;
let port = 0;
const pem: Record<string, string> = {};
const accepted: string[] = [];

function ssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ktl-tls-'));
  if (!ready) return;
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=ktl test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  );
  const leaf = async (name: string, ext: string) => {
    await writeFile(join(work, `${name}.ext`), ext);
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    );
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    );
  };
  await leaf('server', 'subjectAltName=DNS:buildkit.test\nextendedKeyUsage=serverAuth\n');
  await leaf('client', 'extendedKeyUsage=clientAuth\n');
  for (const f of ['ca.pem', 'server.pem', 'server.key', 'client.pem', 'client.key'])
    pem[f] = await readFile(join(work, f), 'utf8');

  const engine = parseAddress(`docker://${probe.ok ? probe.rig.dockerHost : ''}`);
  if (engine.kind !== 'docker') throw new Error('rig engine is not a docker:// address');
  server = tls.createServer(
    {
      cert: pem['server.pem'],
      key: pem['server.key'],
      ca: pem['ca.pem'],
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (client: tls.TLSSocket) => {
      accepted.push(String(client.getPeerCertificate().subject?.CN));
      void (async () => {
        let up: net.Socket;
        try {
          up = await httpUpgrade(await dialRaw(engine.engine, undefined), { path: '/grpc' });
        } catch {
          client.destroy();
          return;
        }
        client.pipe(up).pipe(client);
        client.on('error', () => up.destroy());
        up.on('error', () => client.destroy());
      })();
    },
  );
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
  const ctx = join(work, 'ctx');
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY f /f\nRUN cat /f > /out\n`);
  await writeFile(join(ctx, 'f'), 'over mutual TLS\n');
});

afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await rm(work, { recursive: true, force: true });
});

rigTest(
  `a build over tcp:// with mutual TLS: server verified by name, client certificate presented${why}`,
  async () => {
    const conn = await connect(`tcp://127.0.0.1:${port}`, {
      tls: {
        ca: pem['ca.pem'],
        cert: pem['client.pem'],
        key: pem['client.key'],
        serverName: 'buildkit.test',
      },
    });
    try {
      expect((await conn.info()).package).toContain('buildkit');
      const out = join(work, 'out');
      await solveDockerfile(conn, {
        contextDir: join(work, 'ctx'),
        exports: [{ type: 'local', dest: out }],
      });
      expect(await readFile(join(out, 'out'), 'utf8')).toBe('over mutual TLS\n');
    } finally {
      await conn.close();
    }
    expect(accepted).toContain('client');
  },
  90_000,
);

rigTest(
  `refused without a client certificate, and when the server's name does not match${why}`,
  async () => {
    const attempt = async (t: Parameters<typeof connect>[1]) => {
      try {
        const c = await connect(`tcp://127.0.0.1:${port}`, { ...t, timeoutMs: 5000 });
        await c.info(5000);
        await c.close();
        return 'connected';
      } catch (e) {
        return BuildkitError.from(e).message;
      }
    };
    const before = accepted.length;
    const noCert = await attempt({ tls: { ca: pem['ca.pem'], serverName: 'buildkit.test' } });
    expect(noCert).not.toBe('connected');
    const wrongName = await attempt({
      tls: {
        ca: pem['ca.pem'],
        cert: pem['client.pem'],
        key: pem['client.key'],
        serverName: 'other.test',
      },
    });
    expect(wrongName).not.toBe('connected');
    expect(accepted.length).toBe(before); // neither reached the builder
  },
  60_000,
);
