/**
 * Which exporter and attributes each output becomes, per builder kind. The builder is a
 * stand-in answering ListWorkers with the labels real engines report (the rig's engine is
 * only the containerd kind; build.test.ts exercises that one end to end).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type BuildkitConnection, BuildkitError, type WorkerInfo } from '@ktl/buildkit-client';
import { checkEngineSupport } from '../src/build/engine-support';
import { parseBuildOptions, type RawBuildFlags } from '../src/build/options';
import { splitEnginePushes, toExportSpecs } from '../src/build/outputs';
import { checkPlatformSupport } from '../src/build/platforms';
import { BuildUsageError } from '../src/build/usage-error';

const dir = mkdtempSync(join(tmpdir(), 'ktl-outputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');

const EXECUTOR = 'org.mobyproject.buildkit.worker.executor';
const builder = (address: string, labels: Record<string, string>) =>
  ({
    address,
    listWorkers: async (): Promise<WorkerInfo[]> => [
      { id: 'w0', labels, platforms: ['linux/amd64'] },
    ],
  }) as unknown as BuildkitConnection;
const containerdEngine = builder('docker://unix:///var/run/docker.sock', {
  [EXECUTOR]: 'containerd',
});
const graphdriverEngine = builder('docker://unix:///var/run/docker.sock', { [EXECUTOR]: 'oci' });
const buildkitd = builder('unix:///run/buildkit/buildkitd.sock', { [EXECUTOR]: 'oci' });

const specs = (raw: Omit<RawBuildFlags, 'context'>, conn: BuildkitConnection) =>
  toExportSpecs(parseBuildOptions({ context: dir, ...raw }, { cwd: dir, env: {} }), conn);

describe('toExportSpecs', () => {
  test('a push to a loopback registry is insecure (plain HTTP); OCI media types always', async () => {
    const [e] = await specs({ tag: ['127.0.0.1:5000/app:1'], push: true }, containerdEngine);
    expect(e).toEqual({
      type: 'image',
      attrs: {
        name: '127.0.0.1:5000/app:1',
        push: 'true',
        'registry.insecure': 'true',
        'oci-mediatypes': 'true',
      },
    });
  });

  test('a push anywhere else stays TLS; a mixed set of names too', async () => {
    const [hub] = await specs({ tag: ['app:1'], push: true }, containerdEngine);
    expect(hub?.attrs).toEqual({
      name: 'docker.io/library/app:1',
      push: 'true',
      'oci-mediatypes': 'true',
    });
    const [mixed] = await specs(
      { tag: ['127.0.0.1:5000/app:1', 'registry.example/app:1'], push: true },
      containerdEngine,
    );
    expect(mixed?.attrs?.['registry.insecure']).toBeUndefined();
  });

  test('a graphdriver engine stores images through its moby exporter', async () => {
    const [e] = await specs({ tag: ['app:1'], load: true }, graphdriverEngine);
    expect(e?.type).toBe('moby');
    const [c] = await specs({ tag: ['app:1'], load: true }, containerdEngine);
    expect(c?.type).toBe('image');
  });

  test('--load on buildkitd is refused: it has no engine image store', async () => {
    await expect(specs({ tag: ['app:1'], load: true }, buildkitd)).rejects.toThrow(BuildUsageError);
    await expect(specs({ tag: ['app:1'], load: true }, buildkitd)).rejects.toThrow(
      'is buildkitd, which has no engine image store to load into',
    );
  });

  test('archives are named after -t; local and tar pass their attributes', async () => {
    const out = await specs(
      {
        tag: ['app:1'],
        output: [
          `type=docker,dest=${join(dir, 'i.tar')}`,
          `type=local,dest=${join(dir, 'o')},platform-split=true`,
        ],
      },
      containerdEngine,
    );
    expect(out).toEqual([
      { type: 'docker', dest: join(dir, 'i.tar'), attrs: { name: 'docker.io/library/app:1' } },
      {
        type: 'local',
        dest: join(dir, 'o'),
        attrs: { 'platform-split': 'true' },
        keepSetid: false,
      },
    ]);
  });
});

describe('splitEnginePushes', () => {
  test("a moby exporter's push=true becomes pushes through the engine; other exporters pass", async () => {
    const moby = await specs(
      { tag: ['127.0.0.1:5000/app:1', '127.0.0.1:5000/app:latest'], push: true },
      graphdriverEngine,
    );
    expect(splitEnginePushes(moby)).toEqual({
      exports: [
        {
          type: 'moby',
          attrs: {
            name: '127.0.0.1:5000/app:1,127.0.0.1:5000/app:latest',
            'oci-mediatypes': 'true',
          },
        },
      ],
      pushes: ['127.0.0.1:5000/app:1', '127.0.0.1:5000/app:latest'],
    });
    const loaded = await specs({ tag: ['app:1'], load: true }, graphdriverEngine);
    expect(splitEnginePushes(loaded)).toEqual({ exports: loaded, pushes: [] });
    const image = await specs({ tag: ['127.0.0.1:5000/app:1'], push: true }, containerdEngine);
    expect(splitEnginePushes(image)).toEqual({ exports: image, pushes: [] });
  });
});

describe('checkEngineSupport', () => {
  /** A fake engine whose /_ping names it; workers as the given builder reports them. */
  async function engineAt(
    server: string,
    api: string,
    labels: Record<string, string>,
  ): Promise<{ conn: BuildkitConnection; close: () => void }> {
    const sock = join(dir, `engine-${server}-${Object.values(labels).join('')}.sock`);
    const s = http.createServer((_req, res) => {
      res.writeHead(200, { 'Api-Version': api, Server: `Docker/${server} (linux)` });
      res.end('OK');
    });
    await new Promise<void>((r) => s.listen(sock, r));
    return { conn: builder(`docker://unix://${sock}`, labels), close: () => s.close() };
  }
  const opts = (raw: Omit<RawBuildFlags, 'context'>) =>
    parseBuildOptions({ context: dir, ...raw }, { cwd: dir, env: {} });

  test('Docker 20.10 on a graphdriver: registry cache export and named contexts refused, naming it', async () => {
    const old = await engineAt('20.10.24', '1.41', { [EXECUTOR]: 'oci' });
    try {
      await expect(
        checkEngineSupport(opts({ cacheTo: ['type=registry,ref=r.example/c:1'] }), old.conn),
      ).rejects.toThrow(
        'this engine (Docker 20.10.24, API 1.41) keeps images in a graphdriver store, whose builder exports cache only inline: --cache-to type=registry is not available there',
      );
      await expect(
        checkEngineSupport(opts({ buildContext: [`x=${dir}`] }), old.conn),
      ).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
      await checkEngineSupport(opts({ cacheTo: ['type=inline'], tag: ['a:1'] }), old.conn);
      await checkEngineSupport(opts({ cacheFrom: ['type=registry,ref=r.example/c:1'] }), old.conn);
    } finally {
      old.close();
    }
  });

  test('Docker 26 on the containerd store, or buildkitd: nothing refused', async () => {
    const cur = await engineAt('26.1.5', '1.45', { [EXECUTOR]: 'containerd' });
    try {
      const o = opts({
        cacheTo: ['type=registry,ref=r.example/c:1'],
        buildContext: [`x=${dir}`],
      });
      await checkEngineSupport(o, cur.conn);
      await checkEngineSupport(o, buildkitd);
    } finally {
      cur.close();
    }
  });
});

describe('checkPlatformSupport: refused before the build, per builder kind', () => {
  // A stand-in engine socket answering GET /_ping as Docker 20.10 does (API 1.41).
  const sock = join(dir, 'engine.sock');
  let server: Server;
  beforeAll(
    () =>
      new Promise<void>((res) => {
        server = createServer((c) => {
          c.once('data', () =>
            c.end('HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nServer: Docker/20.10.24\r\n\r\nOK'),
          );
        }).listen(sock, res);
      }),
  );
  afterAll(() => new Promise<void>((res) => server.close(() => res())));
  const oldGraphdriver = () => builder(`docker://unix://${sock}`, { [EXECUTOR]: 'oci' });
  const oldContainerd = () => builder(`docker://unix://${sock}`, { [EXECUTOR]: 'containerd' });
  const check = (raw: Omit<RawBuildFlags, 'context'>, conn: BuildkitConnection) =>
    checkPlatformSupport(parseBuildOptions({ context: dir, ...raw }, { cwd: dir, env: {} }), conn);
  const multi = { platform: ['linux/amd64,linux/arm64'] };

  test('a graphdriver engine: no multi-platform image (load or push), no attestations', async () => {
    await expect(check({ ...multi, tag: ['app:1'], load: true }, oldGraphdriver())).rejects.toThrow(
      'this engine (Docker 20.10.24, API 1.41) keeps images in a graphdriver store, whose moby exporter cannot store a multi-platform image (--platform linux/amd64,linux/arm64)',
    );
    await expect(
      check({ ...multi, tag: ['127.0.0.1:5000/a:1'], push: true }, oldGraphdriver()),
    ).rejects.toThrow('cannot push a multi-platform image');
    await expect(
      check({ provenance: 'true', output: [join(dir, 'o')] }, oldGraphdriver()),
    ).rejects.toThrow('cannot make attestations (--attest / --provenance)');
    const e = await check({ ...multi, tag: ['app:1'] }, oldGraphdriver()).catch((x) => x);
    expect(BuildkitError.is(e) && e.code).toBe('E_UNSUPPORTED'); // exit 2
  });

  test('a graphdriver engine: multi-platform files (local, tar) and one-platform images pass', async () => {
    await expect(check({ ...multi, output: [join(dir, 'o')] }, oldGraphdriver())).resolves.toBe(
      undefined,
    );
    await expect(
      check({ ...multi, output: [`type=tar,dest=${join(dir, 'o.tar')}`] }, oldGraphdriver()),
    ).resolves.toBe(undefined);
    await expect(check({ tag: ['app:1'], load: true }, oldGraphdriver())).resolves.toBe(undefined);
  });

  test('platform-split=false needs BuildKit v0.12 (Docker API 1.44): older ones split anyway', async () => {
    const merged = { ...multi, output: [`type=local,dest=${join(dir, 'o')},platform-split=false`] };
    await expect(check(merged, oldContainerd())).rejects.toThrow(
      'this engine (Docker 20.10.24, API 1.41) ignores platform-split=false and would write a directory per platform',
    );
    const old = {
      ...buildkitd,
      info: async () => ({ version: 'v0.11.6', package: '', revision: '' }),
    };
    await expect(check(merged, old as BuildkitConnection)).rejects.toThrow(
      'this BuildKit (v0.11.6) ignores platform-split=false',
    );
    const recent = {
      ...buildkitd,
      info: async () => ({ version: 'v0.13.1', package: '', revision: '' }),
    };
    await expect(check(merged, recent as BuildkitConnection)).resolves.toBe(undefined);
    // One platform: nothing to split or merge.
    await expect(
      check(
        { output: [`type=local,dest=${join(dir, 'o')},platform-split=false`] },
        oldContainerd(),
      ),
    ).resolves.toBe(undefined);
  });

  test('the containerd image store and buildkitd take multi-platform images and attestations', async () => {
    await expect(
      check({ ...multi, tag: ['app:1'], load: true, provenance: 'mode=max' }, containerdEngine),
    ).resolves.toBe(undefined);
    await expect(
      check({ ...multi, tag: ['127.0.0.1:5000/a:1'], push: true }, buildkitd),
    ).resolves.toBe(undefined);
  });
});
