/**
 * The SolveRequest ktl really sends, read off the wire by a gateway between the client and the
 * rig's engine (the request is decoded there, then forwarded, and the build must succeed):
 * the compatibility fields older daemons read, and entitlements only when asked.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { SolveRequest } from '../src/gen/moby/buildkit/v1/control';
import { connect, type Gateway, parseAddress, solveDockerfile, startGateway } from '../src/index';
import { probeRig, skipReason } from './rig';

const probe = await probeRig();
const base = probe.ok ? probe.rig.baseImage : undefined;
const ready = probe.ok && base !== undefined;
const rigTest = ready ? test : test.skip;
const why = skipReason(probe);

let work: string;
let gw: Gateway | undefined;
const seen: SolveRequest[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ktl-solvereq-'));
  if (!ready) return;
  gw = await startGateway({
    upstream: parseAddress(`docker://${probe.ok ? probe.rig.dockerHost : ''}`),
    socketPath: join(work, 'gw.sock'),
    checkSolve: (req) => {
      seen.push(req);
      return undefined;
    },
  });
  const ctx = join(work, 'ctx');
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${base}\nRUN echo built > /out\n`);
});
afterAll(async () => {
  await gw?.close();
  await rm(work, { recursive: true, force: true });
});

rigTest(
  `a local export: Exporters[0] and the deprecated single-exporter fields agree; no entitlements${why}`,
  async () => {
    const conn = await connect(gw!.address);
    try {
      const out = join(work, 'out1');
      await solveDockerfile(conn, {
        contextDir: join(work, 'ctx'),
        exports: [{ type: 'local', dest: out }],
      });
      expect(await readFile(join(out, 'out'), 'utf8')).toBe('built\n');
    } finally {
      await conn.close();
    }
    const req = seen.at(-1)!;
    expect(req.Exporters.map((e) => e.Type)).toEqual(['local']);
    expect(req.ExporterDeprecated).toBe('local');
    expect(req.ExporterAttrsDeprecated).toEqual(req.Exporters[0]!.Attrs);
    expect(req.Entitlements).toEqual([]);
    expect(req.Frontend).toBe('dockerfile.v0');
    expect(req.FrontendAttrs['force-network-mode']).toBeUndefined();
  },
  60_000,
);

rigTest(
  `network host asks for the network.host entitlement, none forces no network${why}`,
  async () => {
    const conn = await connect(gw!.address);
    try {
      await solveDockerfile(conn, {
        contextDir: join(work, 'ctx'),
        network: 'host',
        noCache: true,
      });
      const host = seen.at(-1)!;
      expect(host.Entitlements).toEqual(['network.host']);
      expect(host.FrontendAttrs['force-network-mode']).toBe('host');
      await solveDockerfile(conn, {
        contextDir: join(work, 'ctx'),
        network: 'none',
        noCache: true,
      });
      const none = seen.at(-1)!;
      expect(none.Entitlements).toEqual([]);
      expect(none.FrontendAttrs['force-network-mode']).toBe('none');
      // No exporter at all: neither field is set (the build stays in the cache).
      expect(none.Exporters).toEqual([]);
      expect(none.ExporterDeprecated).toBe('');
    } finally {
      await conn.close();
    }
  },
  60_000,
);

rigTest(
  `cache: Cache.Exports/Imports as given, imports also in the cache-imports frontend attr${why}`,
  async () => {
    const registry = probe.ok ? probe.rig.registry : '';
    const ref = `${registry}/ktltest/solvereq-cache:${Date.now().toString(36)}`;
    const attrs = { ref, 'registry.insecure': 'true' };
    const conn = await connect(gw!.address);
    try {
      await solveDockerfile(conn, {
        contextDir: join(work, 'ctx'),
        cacheImports: [{ type: 'registry', attrs }],
        cacheExports: [{ type: 'registry', attrs: { ...attrs, mode: 'max' } }],
      });
    } finally {
      await conn.close();
    }
    const req = seen.at(-1)!;
    expect(req.Cache?.Exports).toEqual([{ Type: 'registry', Attrs: { ...attrs, mode: 'max' } }]);
    expect(req.Cache?.Imports).toEqual([{ Type: 'registry', Attrs: attrs }]);
    expect(JSON.parse(req.FrontendAttrs['cache-imports'] ?? '')).toEqual([
      { Type: 'registry', Attrs: attrs },
    ]);
    expect(req.Cache?.ExportRefDeprecated).toBe('');
  },
  60_000,
);

rigTest(
  `cache: type=local goes as buildx sends it (dest/src absolute, the import's digest from index.json) and DEST gets its index${why}`,
  async () => {
    const cache = join(work, 'local-cache');
    const conn = await connect(gw!.address);
    try {
      await solveDockerfile(conn, {
        contextDir: join(work, 'ctx'),
        cacheExports: [{ type: 'local', attrs: { dest: cache, mode: 'max' } }],
      });
      const exp = seen.at(-1)!;
      expect(exp.Cache?.Exports).toEqual([{ Type: 'local', Attrs: { dest: cache, mode: 'max' } }]);
      const index = JSON.parse(await readFile(join(cache, 'index.json'), 'utf8'));
      const digest = index.manifests[0].digest as string;
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

      await solveDockerfile(conn, {
        contextDir: join(work, 'ctx'),
        cacheImports: [{ type: 'local', attrs: { src: cache } }],
      });
      const imp = seen.at(-1)!;
      expect(imp.Cache?.Imports).toEqual([{ Type: 'local', Attrs: { src: cache, digest } }]);
      expect(JSON.parse(imp.FrontendAttrs['cache-imports'] ?? '')).toEqual([
        { Type: 'local', Attrs: { src: cache, digest } },
      ]);
    } finally {
      await conn.close();
    }
  },
  60_000,
);
