import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { PruneRequest, SolveRequest } from '../src/gen/moby/buildkit/v1/control';
import {
  connect,
  type Gateway,
  parseAddress,
  solveDockerfile,
  solvePolicy,
  startGateway,
} from '../src/index';
import { probeRig, skipReason } from './rig';

// The gateway is what a sandboxed build client gets instead of the Docker socket. These tests
// talk to it exactly as a hostile client could: raw HTTP, raw gRPC paths, forbidden Solve fields.
const probe = await probeRig();
const base = probe.ok ? probe.rig.baseImage : undefined;
const ready = probe.ok && base !== undefined;
const rigTest = ready ? test : test.skip;
const why = skipReason(probe);

let work: string;
let gw: Gateway | undefined;
const logs: string[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ktl-gw-'));
  if (ready) {
    gw = await startGateway({
      upstream: parseAddress(`docker://${probe.ok ? probe.rig.dockerHost : ''}`),
      socketPath: join(work, 'gw.sock'),
      checkSolve: solvePolicy({
        entitlements: [],
        imageNames: ['docker.io/library/allowed:latest'],
        cacheExportRefs: ['127.0.0.1:5000/allowed:cache'],
      }),
      log: (l) => logs.push(l),
    });
  }
});
afterAll(async () => {
  await gw?.close();
  await rm(work, { recursive: true, force: true });
});

function rawHttp(path: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path });
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.write(request);
  });
}

rigTest(`refuses the Docker API: container create, version, images${why}`, async () => {
  for (const [method, target] of [
    ['POST', '/v1.45/containers/create'],
    ['GET', '/version'],
    ['GET', '/images/json'],
    ['POST', '/grpc/../containers/create'],
    ['POST', '/grpc?x=1'],
    ['GET', '/grpc'],
  ]) {
    const body = '{"Image":"x","HostConfig":{"Privileged":true,"Binds":["/:/host"]}}';
    const res = await rawHttp(
      gw!.socketPath,
      `${method} ${target} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect({ target, status: res.split('\r\n')[0] }).toEqual({
      target,
      status: 'HTTP/1.1 403 Forbidden',
    });
    expect(res).toContain('not part of the BuildKit API');
  }
  expect(gw!.refused.length).toBeGreaterThanOrEqual(6);
});

rigTest(`refuses malformed and smuggling-shaped heads${why}`, async () => {
  const folded = await rawHttp(
    gw!.socketPath,
    'POST /session HTTP/1.1\r\nHost: d\r\nUpgrade: h2c\r\n X-Folded: y\r\n\r\n',
  );
  expect(folded.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  const withBody = await rawHttp(
    gw!.socketPath,
    'POST /session HTTP/1.1\r\nHost: d\r\nUpgrade: h2c\r\n\r\nPOST /containers/create HTTP/1.1\r\n\r\n',
  );
  expect(withBody.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
});

rigTest(
  `answers Info and builds through the gateway${why}`,
  async () => {
    const conn = await connect(gw!.address);
    try {
      const info = await conn.info();
      expect(info.package).toContain('buildkit');
      const ctx = join(work, 'ctx');
      await mkdir(ctx, { recursive: true });
      await writeFile(
        join(ctx, 'Dockerfile'),
        `FROM ${base}\nCOPY msg /msg\nRUN cat /msg > /out\n`,
      );
      await writeFile(join(ctx, 'msg'), 'through the gateway\n');
      const out = join(work, 'out');
      await solveDockerfile(conn, { contextDir: ctx, exports: [{ type: 'local', dest: out }] });
      expect(await readFile(join(out, 'out'), 'utf8')).toBe('through the gateway\n');
    } finally {
      await conn.close();
    }
  },
  60_000,
);

function rawSolve(
  conn: Awaited<ReturnType<typeof connect>>,
  partial: Parameters<typeof SolveRequest.fromPartial>[0],
): Promise<string> {
  return new Promise((resolve) => {
    conn.control.solve(
      SolveRequest.fromPartial({ Ref: `gw${Date.now()}`, Frontend: 'dockerfile.v0', ...partial }),
      (err) => resolve(err ? err.message : 'accepted'),
    );
  });
}

rigTest(`refuses entitlements, network and image names the user did not grant${why}`, async () => {
  const conn = await connect(gw!.address);
  try {
    expect(await rawSolve(conn, { Entitlements: ['network.host'] })).toContain(
      'entitlement network.host was not granted',
    );
    expect(await rawSolve(conn, { Entitlements: ['security.insecure'] })).toContain(
      'entitlement security.insecure was not granted',
    );
    expect(
      await rawSolve(conn, {
        Exporters: [{ Type: 'image', Attrs: { name: 'docker.io/library/nginx:latest' } }],
      }),
    ).toContain('export names image "docker.io/library/nginx:latest"');
    expect(
      await rawSolve(conn, {
        ExporterDeprecated: 'moby',
        ExporterAttrsDeprecated: { name: 'allowed:latest,docker.io/library/nginx:latest' },
      }),
    ).toContain('not given with -t');
    expect(
      await rawSolve(conn, {
        Cache: { Exports: [{ Type: 'registry', Attrs: { ref: '127.0.0.1:5000/stolen:cache' } }] },
      }),
    ).toContain(
      'cache export to "127.0.0.1:5000/stolen:cache", which was not given with --cache-to',
    );
    expect(logs.some((l) => l.startsWith('refused Solve: entitlement network.host'))).toBe(true);
  } finally {
    await conn.close();
  }
});

test('solvePolicy: hermetic builds must ask for force-network-mode=none', () => {
  const check = solvePolicy({ requireNetworkNone: true });
  expect(check(SolveRequest.fromPartial({}))).toContain('without network');
  expect(
    check(SolveRequest.fromPartial({ FrontendAttrs: { 'force-network-mode': 'none' } })),
  ).toBeUndefined();
  expect(
    solvePolicy({ entitlements: ['network.host'] })(
      SolveRequest.fromPartial({ Entitlements: ['network.host'] }),
    ),
  ).toBeUndefined();
});

test('solvePolicy: cache exports only to the --cache-to refs (or inline, which rides in the image)', () => {
  const check = solvePolicy({ cacheExportRefs: ['127.0.0.1:5000/app:cache'] });
  const cache = (Exports: { Type: string; Attrs: Record<string, string> }[]) =>
    SolveRequest.fromPartial({ Cache: { Exports } });
  expect(
    check(cache([{ Type: 'registry', Attrs: { ref: '127.0.0.1:5000/app:cache', mode: 'max' } }])),
  ).toBeUndefined();
  expect(check(cache([{ Type: 'inline', Attrs: {} }]))).toBeUndefined();
  expect(check(cache([{ Type: 'registry', Attrs: { ref: '127.0.0.1:5000/other:cache' } }]))).toBe(
    'cache export to "127.0.0.1:5000/other:cache", which was not given with --cache-to',
  );
  expect(check(cache([{ Type: 'registry', Attrs: {} }]))).toContain('not given with --cache-to');
  expect(check(cache([{ Type: 'local', Attrs: { dest: '/tmp/x' } }]))).toContain(
    'cache export type local is not allowed from the sandbox',
  );
  // The pre-v0.4 field daemons still translate into a registry export.
  expect(
    check(SolveRequest.fromPartial({ Cache: { ExportRefDeprecated: 'evil.example/x:y' } })),
  ).toContain('deprecated ExportRef field');
  // With no --cache-to at all, any registry cache export is refused.
  expect(
    solvePolicy({ cacheExportRefs: [] })(
      cache([{ Type: 'registry', Attrs: { ref: '127.0.0.1:5000/app:cache' } }]),
    ),
  ).toContain('not given with --cache-to');
});

rigTest(`refuses Control methods outside the allow-list (Prune)${why}`, async () => {
  const conn = await connect(gw!.address);
  try {
    const err = await new Promise<unknown>((resolve) => {
      const call = conn.control.prune(PruneRequest.fromPartial({ all: true }));
      call.on('error', resolve);
      call.on('end', () => resolve(undefined));
      call.on('data', () => {});
    });
    expect(String((err as Error | undefined)?.message)).toContain(
      'not allowed from inside the sandbox',
    );
  } finally {
    await conn.close();
  }
});

rigTest(
  `sessionOnly: the Control API is refused outright, so the jail can only serve its session${why}`,
  async () => {
    const only = await startGateway({
      upstream: parseAddress(`docker://${probe.ok ? probe.rig.dockerHost : ''}`),
      socketPath: join(work, 'session-only.sock'),
      sessionOnly: true,
    });
    try {
      let message = '';
      try {
        const conn = await connect(only.address, { engineGrpc: 'upgrade', timeoutMs: 3000 });
        await conn.close();
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/403|only the build session is served here/);
      expect(only.refused.some((l) => l.includes('may only open its build session'))).toBe(true);
    } finally {
      await only.close();
    }
  },
  30_000,
);

rigTest(
  `a promised upstream: the gateway listens at once, connections wait for the builder${why}`,
  async () => {
    let resolveUp!: (a: ReturnType<typeof parseAddress>) => void;
    const later = new Promise<ReturnType<typeof parseAddress>>((r) => {
      resolveUp = r;
    });
    const g = await startGateway({ upstream: later, socketPath: join(work, 'later.sock') });
    try {
      // Before the builder is known the address is not either (engine or buildkitd prefix).
      expect(() => g.address).toThrow(/known once its upstream is/);
      // A client that connects early is answered once the upstream resolves.
      const early = rawHttp(
        g.socketPath,
        'GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n',
      );
      await new Promise((r) => setTimeout(r, 50));
      resolveUp(parseAddress(`docker://${probe.ok ? probe.rig.dockerHost : ''}`));
      expect((await early).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      expect(g.address).toBe(`docker://unix://${g.socketPath}`);
      const conn = await connect(g.address);
      expect((await conn.info()).package).toContain('buildkit');
      await conn.close();
    } finally {
      await g.close();
    }
  },
);

test('a promised upstream that rejects: connections are closed and the failure logged', async () => {
  const lines: string[] = [];
  const g = await startGateway({
    upstream: Promise.reject(new Error('no builder answered')),
    socketPath: join(work, 'rejected.sock'),
    log: (l) => lines.push(l),
  });
  try {
    // Closed without a byte of answer (whether the client's write races the close or not).
    const got = await new Promise<string>((resolve) => {
      const s = net.connect({ path: g.socketPath });
      let out = '';
      s.on('data', (d) => {
        out += d.toString('latin1');
      });
      s.on('error', () => {});
      s.on('close', () => resolve(out));
      s.write('GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n');
    });
    expect(got).toBe('');
    expect(lines).toEqual(['builder unreachable: no builder answered']);
    expect(() => g.address).toThrow(/known once its upstream is/);
  } finally {
    await g.close();
  }
});
