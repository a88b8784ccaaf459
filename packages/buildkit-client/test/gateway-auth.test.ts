/**
 * The gateway's ktl-private Auth endpoint: a jailed build client relays the daemon's registry
 * credential calls to the ktl outside (authRelay), which answers them from its own store. No
 * builder is needed: the endpoint is answered by the gateway itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { authRelay } from '../src/gateway/auth-endpoint';
import { type Gateway, startGateway } from '../src/gateway/gateway';
import {
  CredentialsRequest,
  CredentialsResponse,
  GetTokenAuthorityRequest,
} from '../src/gen/moby/filesync/v1/auth';
import { type AuthAnswerer, credentialAnswerer } from '../src/session/auth-service';
import { GrpcStatusError, serveGrpc } from '../src/session/grpc-server';
import { buildHandlers } from '../src/session/session';
import { parseAddress } from '../src/transport/address';

const dir = mkdtempSync(join(tmpdir(), 'ktl-gw-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const open: Gateway[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});

const asked: string[] = [];
const store = credentialAnswerer(
  {
    get: async (h) => {
      if (h === 'broken.example') throw new Error('docker-credential-x get broken.example: boom');
      return h === 'reg.example:5000' ? { username: 'u', secret: 's3cret' } : undefined;
    },
  },
  { onCredentials: (h, given) => asked.push(`${h}:${given ? 'given' : 'none'}`) },
);

/** A gateway whose builder is never found (auth calls do not need one), or the one given. */
async function gateway(
  auth: AuthAnswerer | undefined,
  upstream = new Promise<never>(() => {}) as Promise<ReturnType<typeof parseAddress>>,
) {
  const logs: string[] = [];
  const g = await startGateway({
    upstream,
    socketPath: join(dir, `gw${n++}.sock`),
    sessionOnly: true,
    ...(auth ? { auth } : {}),
    log: (l) => logs.push(l),
  });
  open.push(g);
  return { g, logs };
}

/** Raw bytes to the socket, everything it answers until it closes. */
function raw(path: string, parts: (string | Buffer)[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    (async () => {
      for (const p of parts) {
        s.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  });
}

const credReq = (host: string) => CredentialsRequest.encode({ Host: host }).finish();

describe('the gateway Auth endpoint', () => {
  test('relay round trip: Credentials answered outside, unknown hosts empty, helpers errors as the status', async () => {
    const { g } = await gateway(store);
    const relay = authRelay(g.socketPath);
    const got = CredentialsResponse.decode(
      await relay.answer('Credentials', credReq('reg.example:5000')),
    );
    expect(got).toEqual({ Username: 'u', Secret: 's3cret' });
    expect(CredentialsResponse.decode(await relay.answer('Credentials', credReq('x')))).toEqual({
      Username: '',
      Secret: '',
    });
    const failed = await relay
      .answer('Credentials', credReq('broken.example'))
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(GrpcStatusError);
    expect((failed as GrpcStatusError).code).toBe(2);
    expect((failed as GrpcStatusError).message).toBe(
      'docker-credential-x get broken.example: boom',
    );
    // The other methods answer what the store's answerer does: UNIMPLEMENTED, passed through.
    const tokenAuthority = await relay
      .answer(
        'GetTokenAuthority',
        GetTokenAuthorityRequest.encode({ Host: 'h', Salt: new Uint8Array(4) }).finish(),
      )
      .catch((e: unknown) => e);
    expect((tokenAuthority as GrpcStatusError).code).toBe(12);
    expect(asked).toEqual(
      expect.arrayContaining(['reg.example:5000:given', 'x:none', 'broken.example:none']),
    );
  });

  test('the session a jailed client serves relays every Auth method (as the daemon calls them)', async () => {
    const { g } = await gateway(store);
    const handlers = buildHandlers({ auth: authRelay(g.socketPath) });
    const server = net.createServer((sock) => {
      serveGrpc(sock, handlers);
    });
    const sp = join(dir, `session${n++}.sock`);
    await new Promise<void>((r) => server.listen(sp, r));
    const client = http2.connect('http://session', { createConnection: () => net.connect(sp) });
    const call = async (method: string, body: Uint8Array) => {
      const req = client.request({
        ':method': 'POST',
        ':path': `/moby.filesync.v1.Auth/${method}`,
        'content-type': 'application/grpc',
      });
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      req.end(frame);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      const h = await new Promise<http2.IncomingHttpHeaders>((res) => {
        req.on('response', (x) => x['grpc-status'] !== undefined && res(x));
        req.on('trailers', (t) => res(t));
      });
      return { status: h['grpc-status'], msg: Buffer.concat(chunks).subarray(5) };
    };
    try {
      const r = await call('Credentials', credReq('reg.example:5000'));
      expect(r.status).toBe('0');
      expect(CredentialsResponse.decode(r.msg)).toEqual({ Username: 'u', Secret: 's3cret' });
      for (const m of ['FetchToken', 'GetTokenAuthority', 'VerifyTokenAuthority'])
        expect((await call(m, new Uint8Array())).status).toBe('12');
    } finally {
      client.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('an unknown method, another verb, or no Content-Length is refused, saying why', async () => {
    const { g, logs } = await gateway(store);
    const nope = await raw(g.socketPath, [
      'POST /ktl/auth/Nope HTTP/1.1\r\nContent-Length: 0\r\n\r\n',
    ]);
    expect(nope).toMatch(/^HTTP\/1\.1 404 /);
    expect(nope).toMatch(/X-Ktl-Grpc-Status: 12\r\n/);
    expect(nope).toContain('not a method of the Auth service');
    const relayed = await authRelay(g.socketPath)
      .answer('Nope' as 'Credentials', new Uint8Array())
      .catch((e: unknown) => e);
    expect((relayed as GrpcStatusError).code).toBe(12);
    const path = await raw(g.socketPath, [
      'POST /ktl/auth/Credentials/../x HTTP/1.1\r\nContent-Length: 0\r\n\r\n',
    ]);
    expect(path).toMatch(/^HTTP\/1\.1 404 /);
    const chunked = await raw(g.socketPath, [
      'POST /ktl/auth/Credentials HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ]);
    expect(chunked).toMatch(/^HTTP\/1\.1 400 /);
    expect(g.refused).toHaveLength(4);
    expect(logs.filter((l) => l.startsWith('refused'))).toHaveLength(4);
  });

  test('the call sent a byte at a time is still one call', async () => {
    const { g } = await gateway(store);
    const body = Buffer.from(credReq('reg.example:5000'));
    const req = Buffer.concat([
      Buffer.from(`POST /ktl/auth/Credentials HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`),
      body,
    ]);
    const out = await raw(
      g.socketPath,
      [...req].map((b) => Buffer.from([b])),
    );
    expect(out).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(out).toContain('s3cret');
  });

  test('timeout: an answer that never comes is DEADLINE_EXCEEDED for the call, and the answerer is told', async () => {
    let aborted = false;
    const { g } = await gateway({
      answer: (_m, _r, signal) =>
        new Promise<Uint8Array>(() => {
          signal?.addEventListener('abort', () => {
            aborted = true;
          });
        }),
    });
    const t0 = Date.now();
    const e = await authRelay(g.socketPath, { timeoutMs: 300 })
      .answer('Credentials', credReq('slow.example'))
      .catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(e).toBeInstanceOf(GrpcStatusError);
    expect((e as GrpcStatusError).code).toBe(4);
    expect((e as GrpcStatusError).message).toMatch(/no answer to Credentials within 300 ms/);
    await new Promise((r) => setTimeout(r, 100));
    expect(aborted).toBe(true);
  });

  test('no gateway there (the outer ktl is gone): UNAVAILABLE at once, not a hang', async () => {
    const e = await authRelay(join(dir, 'absent.sock'))
      .answer('Credentials', credReq('x'))
      .catch((x: unknown) => x);
    expect((e as GrpcStatusError).code).toBe(14);
  });

  test('a gateway without auth answers no credentials', async () => {
    const { g } = await gateway(
      undefined,
      Promise.resolve(parseAddress('docker://unix:///nonexistent.sock')),
    );
    const e = await authRelay(g.socketPath, { timeoutMs: 2000 })
      .answer('Credentials', credReq('reg.example:5000'))
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GrpcStatusError);
    expect((e as GrpcStatusError).message).toContain('not part of the BuildKit API');
  });

  test('everything else still reaches the BuildKit side as before (nothing lost to the sniffing)', async () => {
    const { g, logs } = await gateway(
      store,
      Promise.resolve(parseAddress('docker://unix:///nonexistent.sock')),
    );
    expect(await raw(g.socketPath, ['GET /_ping HTTP/1.1\r\n\r\n'])).toMatch(/^HTTP\/1\.1 200 OK/);
    // Starts like an Auth call, then is not one.
    const other = await raw(g.socketPath, ['POST /', 'v1.41/containers/create HTTP/1.1\r\n\r\n']);
    expect(other).toMatch(/^HTTP\/1\.1 403 /);
    expect(logs.some((l) => l.startsWith('refused POST /v1.41/containers/create'))).toBe(true);
    // The builder's /grpc is refused to a session-only client, after the full head was read.
    const grpc = await raw(g.socketPath, [
      'POST /grpc HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
    ]);
    expect(grpc).toContain('only the build session is served here');
  });
});
