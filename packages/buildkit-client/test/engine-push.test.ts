/**
 * pushThroughEngine against a fake engine (an HTTP server on a unix socket speaking the push
 * endpoint's JSON message stream); the real one is pushed to in the cli's build.test.ts, on
 * the Docker 20.10 compatibility engine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { BuildkitError } from '../src/errors';
import type { StatusResponse } from '../src/gen/moby/buildkit/v1/control';
import { pushThroughEngine, registryAuthHeader } from '../src/transport/engine-push';

const dir = mkdtempSync(join(tmpdir(), 'ktl-push-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Seen {
  method: string | undefined;
  url: string | undefined;
  auth: unknown;
}

/** A fake engine whose push answers `status` with these lines (then holds when `hold`). */
async function engine(
  status: number,
  lines: readonly string[],
  hold = false,
): Promise<{ address: string; seen: Seen[]; close: () => void }> {
  const sock = join(dir, `e-${Math.random().toString(36).slice(2)}.sock`);
  const seen: Seen[] = [];
  const s = http.createServer((req, res) => {
    const header = String(req.headers['x-registry-auth'] ?? '');
    // The engine's decoding: URL-safe base64 with padding.
    const std = header.replace(/-/g, '+').replace(/_/g, '/');
    seen.push({
      method: req.method,
      url: req.url,
      auth: header.length % 4 === 0 ? JSON.parse(Buffer.from(std, 'base64').toString()) : 'bad',
    });
    res.writeHead(status, { 'Content-Type': 'application/json' });
    for (const l of lines) res.write(`${l}\r\n`);
    if (!hold) res.end();
  });
  await new Promise<void>((r) => s.listen(sock, r));
  return {
    address: `docker://unix://${sock}`,
    seen,
    close: () => {
      s.closeAllConnections();
      s.close();
    },
  };
}

const OK_STREAM = [
  '{"status":"The push refers to repository [127.0.0.1:5000/team/app]"}',
  '{"status":"Preparing","progressDetail":{},"id":"aaa111"}',
  '{"status":"Layer already exists","progressDetail":{},"id":"bbb222"}',
  '{"status":"Pushing","progressDetail":{"current":512,"total":2048},"progress":"[=>  ]","id":"aaa111"}',
  '{"status":"Pushed","progressDetail":{},"id":"aaa111"}',
  '{"status":"v1: digest: sha256:1111111111111111111111111111111111111111111111111111111111111111 size: 734"}',
  '{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","Size":734}}',
];

describe('pushThroughEngine', () => {
  test('POSTs /images/REPO/push?tag=, credentials in X-Registry-Auth, progress as a step of its own', async () => {
    const e = await engine(200, OK_STREAM);
    const statuses: StatusResponse[] = [];
    try {
      const r = await pushThroughEngine(e.address, '127.0.0.1:5000/team/app:v1', {
        credentials: { username: 'ktl', secret: 's3cret?>' },
        onStatus: (s) => statuses.push(s),
      });
      expect(r.digest).toBe(`sha256:${'1'.repeat(64)}`);
      expect(e.seen).toEqual([
        {
          method: 'POST',
          url: '/images/127.0.0.1:5000/team/app/push?tag=v1',
          auth: { username: 'ktl', password: 's3cret?>', serveraddress: '127.0.0.1:5000' },
        },
      ]);
      const vertexes = statuses.flatMap((s) => s.vertexes);
      expect(new Set(vertexes.map((v) => v.name))).toEqual(
        new Set(['pushing 127.0.0.1:5000/team/app:v1 with docker']),
      );
      expect(vertexes[0]!.completed).toBeUndefined();
      expect(vertexes.at(-1)!.completed).toBeInstanceOf(Date);
      expect(vertexes.at(-1)!.error).toBe('');
      const layers = statuses.flatMap((s) => s.statuses);
      expect(layers.every((l) => l.vertex === vertexes[0]!.digest)).toBe(true);
      const last = (id: string) => layers.filter((l) => l.ID === `pushing layer ${id}`).at(-1)!;
      expect(last('aaa111').completed).toBeInstanceOf(Date);
      expect(last('bbb222').completed).toBeInstanceOf(Date);
      expect(layers.find((l) => l.current === 512n)?.total).toBe(2048n);
      const logs = statuses.flatMap((s) => s.logs).map((l) => Buffer.from(l.msg).toString());
      expect(logs).toEqual([
        'The push refers to repository [127.0.0.1:5000/team/app]\n',
        `v1: digest: sha256:${'1'.repeat(64)} size: 734\n`,
      ]);
    } finally {
      e.close();
    }
  });

  test('an error in the stream fails the step and rejects with E_SOLVE, the registry named', async () => {
    const e = await engine(200, [
      '{"status":"The push refers to repository [127.0.0.1:5999/app]"}',
      '{"errorDetail":{"message":"Get \\"http://127.0.0.1:5999/v2/\\": connection refused"},"error":"Get \\"http://127.0.0.1:5999/v2/\\": connection refused"}',
    ]);
    const statuses: StatusResponse[] = [];
    try {
      const err = await pushThroughEngine(e.address, '127.0.0.1:5999/app', {
        onStatus: (s) => statuses.push(s),
      }).catch((x: unknown) => x);
      expect(BuildkitError.is(err) && err.code).toBe('E_SOLVE');
      expect((err as Error).message).toBe(
        'failed to push 127.0.0.1:5999/app:latest: Get "http://127.0.0.1:5999/v2/": connection refused',
      );
      expect(e.seen[0]!.url).toBe('/images/127.0.0.1:5999/app/push?tag=latest');
      expect(e.seen[0]!.auth).toEqual({}); // anonymous
      expect(statuses.flatMap((s) => s.vertexes).at(-1)!.error).toContain('connection refused');
    } finally {
      e.close();
    }
  });

  test('an engine refusing the request (404 No such image): its message', async () => {
    const e = await engine(404, ['{"message":"No such image: docker.io/library/app:1"}']);
    try {
      await expect(pushThroughEngine(e.address, 'app:1')).rejects.toThrow(
        'failed to push docker.io/library/app:1: No such image: docker.io/library/app:1',
      );
      expect(e.seen[0]!.url).toBe('/images/docker.io/library/app/push?tag=1');
    } finally {
      e.close();
    }
  });

  test('abort: the connection is closed and the push rejects as canceled', async () => {
    const e = await engine(200, ['{"status":"Preparing","progressDetail":{},"id":"aaa111"}'], true);
    const ac = new AbortController();
    try {
      const p = pushThroughEngine(e.address, '127.0.0.1:5000/app:1', {
        signal: ac.signal,
        onStatus: (s) => {
          if (s.statuses.length > 0) ac.abort();
        },
      });
      await expect(p).rejects.toThrow('failed to push 127.0.0.1:5000/app:1: canceled');
    } finally {
      e.close();
    }
  });

  test('refused before any request: not a Docker engine, a digest without a tag, a bad name', async () => {
    await expect(pushThroughEngine('unix:///run/buildkit.sock', 'a:1')).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    await expect(
      pushThroughEngine('docker://unix:///nonexistent.sock', `a@sha256:${'2'.repeat(64)}`),
    ).rejects.toThrow('a push needs a tag');
    await expect(
      pushThroughEngine('docker://unix:///nonexistent.sock', 'team/UPPER'),
    ).rejects.toThrow('repository name must be lowercase');
  });

  test('X-Registry-Auth is URL-safe base64 with padding (the engine pushes anonymously otherwise)', () => {
    for (const secret of ['a', 'ab', 'abc', '>>>???', 'ÿþ']) {
      const h = registryAuthHeader('r.example', { username: 'u', secret });
      expect(h).toMatch(/^[A-Za-z0-9_-]+=*$/);
      expect(h.length % 4).toBe(0);
      const json = Buffer.from(h.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString();
      expect(JSON.parse(json)).toEqual({
        username: 'u',
        password: secret,
        serveraddress: 'r.example',
      });
    }
    expect(
      JSON.parse(
        Buffer.from(registryAuthHeader('r', { username: '', secret: 'tok' }), 'base64').toString(),
      ),
    ).toEqual({
      identitytoken: 'tok',
      serveraddress: 'r',
    });
  });
});
