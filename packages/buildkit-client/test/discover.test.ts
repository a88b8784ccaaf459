import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { BuildkitError, candidates, connect, formatAddress } from '../src/index';

let dir: string;
let deadServer: net.Server;
let closedPort: number;
let httpish: net.Server;
const serverSockets = new Set<net.Socket>();
function track(s: net.Socket) {
  serverSockets.add(s);
  s.once('close', () => serverSockets.delete(s));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ktl-disc-'));
  await writeFile(join(dir, 'plain-file'), 'x');
  // A port that was just free: connecting to it is refused.
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as net.AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
  // A unix socket that answers HTTP/1.1 404 to everything, like an engine without /grpc.
  httpish = net.createServer((s) => {
    track(s);
    s.once('data', () => {
      const body = '{"message":"page not found"}';
      s.end(`HTTP/1.1 404 Not Found\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((r) => httpish.listen(join(dir, 'http.sock'), r));
  // A socket that accepts and never says anything.
  deadServer = net.createServer(track);
  await new Promise<void>((r) => deadServer.listen(join(dir, 'silent.sock'), r));
});

afterAll(async () => {
  // The silent server never reads, so it never sees our FIN: close its side here.
  for (const s of serverSockets) s.destroy();
  await new Promise<void>((r) => httpish.close(() => r()));
  await new Promise<void>((r) => deadServer.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

describe('candidates', () => {
  test('order: BUILDKIT_HOST, DOCKER_HOST (as docker://), then defaults; duplicates once', () => {
    const got = candidates({
      env: { BUILDKIT_HOST: 'tcp://1.2.3.4:1234', DOCKER_HOST: 'unix:///var/run/docker.sock' },
    });
    expect(got.map((c) => [c.source, c.address && formatAddress(c.address)])).toEqual([
      ['BUILDKIT_HOST', 'tcp://1.2.3.4:1234'],
      ['DOCKER_HOST', 'docker://unix:///var/run/docker.sock'],
      ['default buildkitd socket', 'unix:///run/buildkit/buildkitd.sock'],
    ]);
  });

  test('preferred builders come after the variables and before the default sockets', () => {
    const got = candidates({
      env: { DOCKER_HOST: 'unix:///e.sock' },
      preferred: [{ source: 'ktl builder', address: 'docker://unix:///state/engine.sock' }],
    });
    expect(got.map((c) => c.source)).toEqual([
      'DOCKER_HOST',
      'ktl builder',
      'default buildkitd socket',
      'default Docker socket',
    ]);
  });

  test('no env: only the two default sockets', () => {
    expect(candidates({ env: {} }).map((c) => c.raw)).toEqual([
      'unix:///run/buildkit/buildkitd.sock',
      'docker://unix:///var/run/docker.sock',
    ]);
  });

  test('an unparsable variable is kept with its parse error', () => {
    const [c] = candidates({ env: { BUILDKIT_HOST: 'ssh://x' }, defaults: [] });
    expect(c?.address).toBeUndefined();
    expect(c?.parseError).toMatch(/unsupported scheme/);
  });
});

describe('discovery failure', () => {
  test('one E_NO_BUILDER error lists every address and why it failed', async () => {
    const env = {
      BUILDKIT_HOST: `tcp://127.0.0.1:${closedPort}`,
      DOCKER_HOST: `unix://${join(dir, 'http.sock')}`,
    };
    const defaults = [
      { source: 'default buildkitd socket', address: `unix://${join(dir, 'missing.sock')}` },
      { source: 'default Docker socket', address: `docker://unix://${join(dir, 'plain-file')}` },
      { source: 'silent', address: `docker://unix://${join(dir, 'silent.sock')}` },
      { source: 'bad', address: 'ssh://nope' },
    ];
    let err: unknown;
    try {
      await connect(undefined, { env, defaults, timeoutMs: 500 });
    } catch (e) {
      err = e;
    }
    expect(BuildkitError.is(err)).toBe(true);
    const e = err as BuildkitError;
    expect(e.code).toBe('E_NO_BUILDER');
    expect(e.attempts.map((a) => a.source)).toEqual([
      'BUILDKIT_HOST',
      'DOCKER_HOST',
      'default buildkitd socket',
      'default Docker socket',
      'silent',
      'bad',
    ]);
    const reasons = e.attempts.map((a) => a.reason);
    expect(reasons[0]).toBe('connection refused (nothing listening)');
    expect(reasons[1]).toMatch(
      /engine refused POST \/grpc: HTTP\/1.1 404 Not Found .*page not found/,
    );
    expect(reasons[1]).toMatch(/no BuildKit endpoint/);
    expect(reasons[2]).toBe('no socket there');
    expect(reasons[3]).toMatch(/connection refused|not a socket/);
    expect(reasons[4]).toMatch(/no answer to POST \/grpc within 500 ms/);
    expect(reasons[5]).toMatch(/unsupported scheme "ssh"/);
    expect(e.message).toContain(
      `  - BUILDKIT_HOST: tcp://127.0.0.1:${closedPort}: connection refused`,
    );
    expect(e.message).toContain(`  - DOCKER_HOST: docker://unix://${join(dir, 'http.sock')}: `);
    expect(e.message).toMatch(/start buildkitd or a Docker engine, or point BUILDKIT_HOST/);
  });

  test('an explicit address fails with E_CONNECT, not discovery', async () => {
    await expect(connect(`unix://${join(dir, 'missing.sock')}`)).rejects.toMatchObject({
      code: 'E_CONNECT',
      message: expect.stringMatching(/missing\.sock: no socket there$/),
    });
  });

  test('an unparsable explicit address is E_BAD_ADDRESS', async () => {
    await expect(connect('http://x')).rejects.toMatchObject({ code: 'E_BAD_ADDRESS' });
  });

  test('BuildkitError.from keeps BuildkitErrors and wraps the rest', () => {
    const be = new BuildkitError('x', { code: 'E_GRPC' });
    expect(BuildkitError.from(be)).toBe(be);
    const w = BuildkitError.from(new Error('boom'));
    expect(w.code).toBe('E_INTERNAL');
    expect(w.message).toBe('internal error: boom');
    expect(BuildkitError.is({})).toBe(false);
  });
});
