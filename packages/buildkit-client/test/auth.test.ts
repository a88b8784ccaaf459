/**
 * Registry credentials from a Docker config (auths, credsStore, credHelpers with fake helper
 * executables), and the session's Auth service answering the daemon's calls.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loadDockerConfig } from '../src/auth/docker-config';
import { CredentialsRequest, CredentialsResponse } from '../src/gen/moby/filesync/v1/auth';
import { serveGrpc } from '../src/session/grpc-server';
import { buildHandlers } from '../src/session/session';

const FIXTURE = fileURLToPath(new URL('./fixtures/credential-helper.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ktl-auth-'));
const bin = join(dir, 'bin');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A docker-credential-<name> that answers from a fixed table, like the real helpers. */
function helper(name: string, table: Record<string, { Username: string; Secret: string }>) {
  mkdirSync(bin, { recursive: true });
  const f = join(bin, `docker-credential-${name}`);
  const tableFile = join(bin, `${name}.table.json`);
  writeFileSync(tableFile, JSON.stringify(table));
  writeFileSync(
    f,
    `#!/bin/sh\nexec node ${JSON.stringify(FIXTURE)} ${JSON.stringify(tableFile)} "$@"\n`,
  );
  chmodSync(f, 0o755);
}

function config(name: string, cfg: unknown): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
  return d;
}

const env = () => ({ ...process.env, PATH: `${bin}:${process.env.PATH}` });
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('loadDockerConfig', () => {
  beforeAll(() => {
    helper('fake', {
      'reg.example.com': { Username: 'helper-user', Secret: 'helper-pass' },
      'https://index.docker.io/v1/': { Username: '<token>', Secret: 'hub-identity-token' },
    });
    helper('broken', {});
    writeFileSync(join(bin, 'docker-credential-broken'), '#!/bin/sh\necho boom >&2\nexit 3\n');
  });

  test('auths: base64 auth, username/password, identity token; keys with scheme and path', async () => {
    const store = loadDockerConfig({
      configDir: config('inline', {
        auths: {
          'https://127.0.0.1:5000/v2/': { auth: b64('alice:s3:cret') },
          'plain.example.com': { username: 'bob', password: 'pw' },
          'tok.example.com': { identitytoken: 'tkn' },
        },
      }),
      env: env(),
    });
    expect(await store.get('127.0.0.1:5000')).toEqual({ username: 'alice', secret: 's3:cret' });
    expect(await store.get('plain.example.com')).toEqual({ username: 'bob', secret: 'pw' });
    expect(await store.get('tok.example.com')).toEqual({ username: '', secret: 'tkn' });
    expect(await store.get('other.example.com')).toBeUndefined();
  });

  test('credHelpers win over auths; credsStore for the rest; Docker Hub under its v1 URL', async () => {
    const store = loadDockerConfig({
      configDir: config('helpers', {
        credsStore: 'fake',
        credHelpers: { 'reg.example.com': 'fake' },
        auths: {
          'reg.example.com': { auth: b64('ignored:x') },
          'file.example.com': { auth: b64('f:g') },
        },
      }),
      env: env(),
    });
    expect(await store.get('reg.example.com')).toEqual({
      username: 'helper-user',
      secret: 'helper-pass',
    });
    // `<token>` from a helper marks an identity token: no user name.
    expect(await store.get('registry-1.docker.io')).toEqual({
      username: '',
      secret: 'hub-identity-token',
    });
    // The store has nothing for this host: fall back to the file.
    expect(await store.get('file.example.com')).toEqual({ username: 'f', secret: 'g' });
  });

  test('a failing or missing helper is an error naming it; a bad helper name is refused', async () => {
    const store = loadDockerConfig({
      configDir: config('bad', {
        credHelpers: {
          'a.example.com': 'broken',
          'b.example.com': 'absent',
          'c.example.com': '../x',
        },
      }),
      env: env(),
    });
    await expect(store.get('a.example.com')).rejects.toThrow(
      'docker-credential-broken get a.example.com: boom',
    );
    await expect(store.get('b.example.com')).rejects.toThrow(
      'docker-credential-absent get b.example.com: not found on PATH',
    );
    await expect(store.get('c.example.com')).rejects.toThrow(
      'invalid credential helper name "../x"',
    );
  });

  test('no config file means no credentials; an unreadable one is an error', async () => {
    expect(
      await loadDockerConfig({ configDir: join(dir, 'none'), env: env() }).get('x'),
    ).toBeUndefined();
    const d = join(dir, 'garbage');
    mkdirSync(d);
    writeFileSync(join(d, 'config.json'), '{not json');
    expect(() => loadDockerConfig({ configDir: d })).toThrow(/cannot read .*config\.json/);
  });

  test('DOCKER_CONFIG is honoured', async () => {
    const d = config('via-env', { auths: { 'e.example.com': { auth: b64('u:p') } } });
    expect(await loadDockerConfig({ env: { DOCKER_CONFIG: d } }).get('e.example.com')).toEqual({
      username: 'u',
      secret: 'p',
    });
  });
});

describe('session Auth service', () => {
  let server: net.Server;
  let client: http2.ClientHttp2Session;
  let stop: () => void;
  beforeAll(async () => {
    const handlers = buildHandlers({
      auth: {
        get: async (h) => (h === 'r.example.com' ? { username: 'u', secret: 's' } : undefined),
      },
    });
    server = net.createServer((sock) => {
      stop = serveGrpc(sock, handlers).close;
    });
    await new Promise<void>((r) => server.listen(join(dir, 'auth.sock'), r));
    client = http2.connect('http://session', {
      createConnection: () => net.connect(join(dir, 'auth.sock')),
    });
  });
  afterAll(async () => {
    client.close();
    stop?.();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function call(method: string, body: Uint8Array) {
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
    const headers = await new Promise<http2.IncomingHttpHeaders>((res) => {
      req.on('response', (h) => h['grpc-status'] !== undefined && res(h));
      req.on('trailers', (t) => res(t));
    });
    const data = Buffer.concat(chunks);
    return {
      status: headers['grpc-status'],
      message: headers['grpc-message'],
      msg: data.subarray(5),
    };
  }

  test('Credentials answers from the store, empty for unknown hosts', async () => {
    const r = await call(
      'Credentials',
      CredentialsRequest.encode({ Host: 'r.example.com' }).finish(),
    );
    expect(r.status).toBe('0');
    expect(CredentialsResponse.decode(r.msg)).toEqual({ Username: 'u', Secret: 's' });
    const none = await call('Credentials', CredentialsRequest.encode({ Host: 'x' }).finish());
    expect(CredentialsResponse.decode(none.msg)).toEqual({ Username: '', Secret: '' });
  });

  test.each(['FetchToken', 'GetTokenAuthority', 'VerifyTokenAuthority'])(
    '%s answers UNIMPLEMENTED (the daemon then uses Credentials)',
    async (m) => {
      const r = await call(m, new Uint8Array());
      expect(r.status).toBe('12');
    },
  );
});
