/**
 * Context upload and local export, judged against the reference client: the same build run by
 * ktl (solveDockerfile) and by `docker buildx build` on the same engine must export the same
 * tree, file by file (content, mode, links, times), on each engine (engines.ts), also for a
 * multi-platform build (a directory per platform, or merged). Plus, on the
 * rig only (they take the longest and exercise no other code path), a 10k-file context and a
 * 1 GiB file.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type BuildkitConnection, connect, solveDockerfile } from '../src/index';
import { gate, type TestEngine, testEngines } from './engines';
import { comparable, linkGroups, snapshot } from './tree-snapshot';

const engines = await testEngines();
const noBuildx = engines[0]!.buildx === undefined ? ' [skipped: KTL_RIG_BUILDX missing]' : '';

const work = mkdtempSync(join(tmpdir(), 'ktl-ctx-'));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** `docker buildx build` on the engine (its default builder: the docker driver). */
function buildx(engine: TestEngine, args: string[]): void {
  const r = spawnSync(engine.buildx!, ['build', '--progress=plain', ...args], {
    env: {
      ...process.env,
      DOCKER_HOST: engine.dockerHost,
      DOCKER_CONFIG: engine.dockerConfig ?? '',
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`buildx failed (${r.status}): ${r.stderr}`);
}

function write(root: string, rel: string, body: string | Buffer, mode = 0o644): void {
  const abs = join(root, rel);
  mkdirSync(join(abs, '..'), { recursive: true });
  writeFileSync(abs, body);
  chmodSync(abs, mode);
}

describe.each(engines.map((e) => [e.label, e] as const))(
  'context upload and local export on %s',
  (_l, engine) => {
    const g = gate(engine);
    const rigTest = noBuildx ? test.skip : g.test;
    const why = g.why || noBuildx;
    let conn: BuildkitConnection | undefined;
    beforeAll(async () => {
      if (!engine.down) conn = await connect(`docker://${engine.dockerHost}`);
    });
    afterAll(async () => {
      await conn?.close();
    });

    rigTest(
      `a multi-stage build exports the same tree as docker buildx build${why}`,
      async () => {
        const id = Math.random().toString(36).slice(2);
        const root = join(work, `cmp-${engine.id}`);
        write(
          root,
          'Dockerfile',
          [
            `FROM ${engine.baseImage} AS build`,
            'ARG FLAVOR=plain',
            'RUN mkdir /out && echo "$FLAVOR" > /out/flavor',
            `RUN --mount=type=cache,target=/cache,id=ktl-cmp-${id} echo cached > /cache/f && cp /cache/f /out/cache-ok`,
            'RUN --mount=type=secret,id=tok cp /run/secrets/tok /out/secret-copy',
            "RUN --mount=type=bind,target=/src cd /src && find . -exec stat -c '%n %a %F %s' {} + | sort > /out/bind-stat",
            'FROM scratch',
            'COPY --from=build /out /out',
            'COPY . /ctx/',
            '',
          ].join('\n'),
        );
        write(root, '.dockerignore', '*.log\n!keep.log\ntmp/\n**/*.bak\ntoken\n');
        write(root, 'exec.sh', '#!/bin/sh\necho hi\n', 0o755);
        write(root, 'readonly.txt', 'ro', 0o444);
        write(root, 'group-w.txt', 'gw', 0o664);
        write(root, 'a.log', 'ignored');
        write(root, 'keep.log', 'kept by an exception');
        write(root, 'tmp/x', 'ignored dir');
        write(root, 'nested/deep/y.bak', 'ignored anywhere');
        write(root, 'nested/deep/z.txt', 'z');
        write(root, 'sp ace.txt', 'space');
        write(root, 'comma, name.txt', 'comma');
        write(root, 'ünï cödé.txt', 'unicode');
        write(root, 'token', 'the-secret');
        write(root, 'zero', '');
        mkdirSync(join(root, 'empty-dir'));
        mkdirSync(join(root, 'nested', 'empty'), { recursive: true });
        symlinkSync('exec.sh', join(root, 'link-rel'));
        symlinkSync('/etc/passwd', join(root, 'link-abs'));
        symlinkSync('missing', join(root, 'link-dangling'));
        symlinkSync('nested', join(root, 'dirlink'));
        linkSync(join(root, 'nested', 'deep', 'z.txt'), join(root, 'hard-z'));
        // Sub-second mtimes must survive the trip (nanoseconds on the wire).
        utimesSync(join(root, 'keep.log'), 1_600_000_000.123456, 1_600_000_000.123456);

        const ours = join(work, `out-ktl-${engine.id}`);
        const theirs = join(work, `out-buildx-${engine.id}`);
        await solveDockerfile(conn!, {
          contextDir: root,
          buildArgs: { FLAVOR: 'spicy' },
          secrets: { tok: readFileSync(join(root, 'token')) },
          exports: [{ type: 'local', dest: ours }],
        });
        buildx(engine, [
          '--build-arg',
          'FLAVOR=spicy',
          '--secret',
          `id=tok,src=${join(root, 'token')}`,
          '-o',
          `type=local,dest=${theirs}`,
          root,
        ]);
        const a = snapshot(ours);
        const b = snapshot(theirs);
        expect([...a.keys()]).toEqual([...b.keys()]);
        // Directory times depend on when the receiver finished writing into them.
        expect(comparable(a)).toEqual(comparable(b));
        expect(linkGroups(a)).toEqual(linkGroups(b));
        // And the build saw what we meant it to see.
        expect(readFileSync(join(ours, 'out', 'flavor'), 'utf8')).toBe('spicy\n');
        expect(readFileSync(join(ours, 'out', 'secret-copy'), 'utf8')).toBe('the-secret');
        expect(readFileSync(join(ours, 'out', 'cache-ok'), 'utf8')).toBe('cached\n');
        expect(a.has('ctx/a.log') || a.has('ctx/tmp') || a.has('ctx/nested/deep/y.bak')).toBe(
          false,
        );
        expect(a.get('ctx/keep.log')?.mtimeMs).toBe(1_600_000_000_123);
        expect(a.get('ctx/exec.sh')?.mode).toBe(0o755);
        expect(a.get('ctx/empty-dir')?.type).toBe('dir');
        expect(a.get('ctx/link-dangling')?.target).toBe('missing');
        const bind = readFileSync(join(ours, 'out', 'bind-stat'), 'utf8');
        expect(bind).toContain('./exec.sh 755 regular file 18');
        expect(bind).toContain('./link-rel 777 symbolic link');
        expect(bind).toContain('./nested/empty 755 directory');
      },
      120_000,
    );

    const mp = gate(engine, 'buildx-multi-platform');
    (noBuildx ? test.skip : mp.test)(
      `a multi-platform build: a directory per platform, or merged with platform-split=false, the same trees as docker buildx build${mp.why || noBuildx}`,
      async () => {
        // No RUN step runs a foreign binary: each stage runs on the build platform and only
        // writes what the target platform is (no emulation on this machine).
        const ctx = join(work, `multi-${engine.id}`);
        mkdirSync(ctx);
        writeFileSync(
          join(ctx, 'Dockerfile'),
          [
            `FROM --platform=$BUILDPLATFORM ${engine.baseImage} AS b`,
            'ARG TARGETPLATFORM TARGETARCH',
            'RUN mkdir -p /out/d && echo $TARGETPLATFORM > /out/d/$TARGETARCH && ln -s d/$TARGETARCH /out/link-$TARGETARCH && chmod 0640 /out/d/$TARGETARCH',
            'FROM scratch',
            'COPY --from=b /out/ /',
            '',
          ].join('\n'),
        );
        const platforms = ['linux/amd64', 'linux/arm64'];
        for (const split of [undefined, 'false']) {
          const attrs: Record<string, string> = split ? { 'platform-split': split } : {};
          const ours = join(work, `multi-ktl-${engine.id}-${split ?? 'default'}`);
          const theirs = join(work, `multi-buildx-${engine.id}-${split ?? 'default'}`);
          await solveDockerfile(conn!, {
            contextDir: ctx,
            platforms,
            exports: [{ type: 'local', dest: ours, attrs }],
          });
          buildx(engine, [
            '--platform',
            platforms.join(','),
            '-o',
            `type=local,dest=${theirs}${split ? `,platform-split=${split}` : ''}`,
            ctx,
          ]);
          const a = snapshot(ours);
          expect(comparable(a)).toEqual(comparable(snapshot(theirs)));
          const paths = [...a.keys()];
          if (split) {
            expect(paths).toEqual(['d', 'd/amd64', 'd/arm64', 'link-amd64', 'link-arm64']);
          } else {
            expect(paths).toEqual([
              'linux_amd64',
              'linux_amd64/d',
              'linux_amd64/d/amd64',
              'linux_amd64/link-amd64',
              'linux_arm64',
              'linux_arm64/d',
              'linux_arm64/d/arm64',
              'linux_arm64/link-arm64',
            ]);
            expect(readFileSync(join(ours, 'linux_arm64/d/arm64'), 'utf8')).toBe('linux/arm64\n');
            // The per-platform directories are the exporter's own, dated like buildx's (epoch 0).
            expect(a.get('linux_amd64')).toMatchObject({ type: 'dir', mode: 0o755, mtimeMs: 0 });
          }
        }
      },
      120_000,
    );
  },
);

describe('large contexts on the rig', () => {
  const rig = engines[0]!;
  const { test: rigTest, why } = gate(rig);
  let conn: BuildkitConnection | undefined;
  beforeAll(async () => {
    if (!rig.down) conn = await connect(`docker://${rig.dockerHost}`);
  });
  afterAll(async () => {
    await conn?.close();
  });

  rigTest(
    `a 10,000-file context arrives complete${why}`,
    async () => {
      const ctx = join(work, 'many');
      const hash = createHash('md5');
      const names: string[] = [];
      for (let d = 0; d < 100; d++) {
        mkdirSync(join(ctx, `d${String(d).padStart(3, '0')}`), { recursive: true });
        for (let f = 0; f < 100; f++) {
          names.push(`d${String(d).padStart(3, '0')}/f${String(f).padStart(3, '0')}`);
        }
      }
      for (const n of names) writeFileSync(join(ctx, n), `${n}\n`);
      for (const n of names) hash.update(`${n}\n`);
      writeFileSync(
        join(ctx, 'Dockerfile'),
        `FROM ${rig.baseImage} AS b\nRUN --mount=type=bind,target=/ctx cd /ctx && find d* -type f | wc -l > /count && find d* -type f | sort | xargs cat | md5sum | cut -d' ' -f1 > /sum\nFROM scratch\nCOPY --from=b /count /sum /\n`,
      );
      const out = join(work, 'many-out');
      await solveDockerfile(conn!, {
        contextDir: ctx,
        noCache: true,
        exports: [{ type: 'local', dest: out }],
      });
      expect(readFileSync(join(out, 'count'), 'utf8').trim()).toBe('10000');
      expect(readFileSync(join(out, 'sum'), 'utf8').trim()).toBe(hash.digest('hex'));
      rmSync(ctx, { recursive: true, force: true });
    },
    120_000,
  );

  rigTest(
    `a 1 GiB file arrives intact${why}`,
    async () => {
      const ctx = join(work, 'huge');
      mkdirSync(ctx);
      // Sparse, with data at a few places so a shifted or truncated copy cannot pass.
      const big = join(ctx, 'big.bin');
      const fd = openSync(big, 'w');
      const size = 1024 * 1024 * 1024;
      const marks = [0, 32 * 1024 - 3, 123_456_789, size - 7];
      for (const at of marks)
        writeSync(fd, Buffer.from(`@${at}@`.padEnd(7, '#').slice(0, 7)), 0, 7, at);
      closeSync(fd);
      const hash = createHash('md5');
      const f2 = openSync(big, 'r');
      const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
      for (let n = 0; ; ) {
        n = readSync(f2, buf, 0, buf.length, null);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
      }
      closeSync(f2);
      writeFileSync(
        join(ctx, 'Dockerfile'),
        `FROM ${rig.baseImage} AS b\nRUN --mount=type=bind,target=/ctx stat -c %s /ctx/big.bin > /size && md5sum /ctx/big.bin | cut -d' ' -f1 > /sum\nFROM scratch\nCOPY --from=b /size /sum /\n`,
      );
      const out = join(work, 'huge-out');
      try {
        await solveDockerfile(conn!, {
          contextDir: ctx,
          noCache: true,
          exports: [{ type: 'local', dest: out }],
        });
      } finally {
        rmSync(ctx, { recursive: true, force: true });
      }
      expect(readFileSync(join(out, 'size'), 'utf8').trim()).toBe(String(size));
      expect(readFileSync(join(out, 'sum'), 'utf8').trim()).toBe(hash.digest('hex'));
    },
    180_000,
  );
});
