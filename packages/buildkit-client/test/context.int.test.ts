/**
 * Context upload and local export, judged against the reference client: the same build run by
 * ktl (solveDockerfile) and by `docker buildx build` on the same engine must export the same
 * tree, file by file (content, mode, links, times). Plus a 10k-file context and a 1 GiB file.
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
import { probeRig, skipReason } from './rig';
import { comparable, linkGroups, snapshot } from './tree-snapshot';

const probe = await probeRig();
const rig = probe.ok ? probe.rig : undefined;
const ready = rig?.baseImage !== undefined && rig.buildx !== undefined;
const why =
  probe.ok && !ready
    ? ' [skipped: KTL_RIG_BASE_IMAGE or KTL_RIG_BUILDX missing]'
    : skipReason(probe);
const rigTest = ready ? test : test.skip;

const work = mkdtempSync(join(tmpdir(), 'ktl-ctx-'));
let conn: BuildkitConnection | undefined;
beforeAll(async () => {
  if (ready) conn = await connect(`docker://${rig!.dockerHost}`);
});
afterAll(async () => {
  await conn?.close();
  rmSync(work, { recursive: true, force: true });
});

function buildx(args: string[]): void {
  const r = spawnSync(rig!.buildx!, ['build', '--progress=plain', ...args], {
    env: { ...process.env, DOCKER_HOST: rig!.dockerHost, DOCKER_CONFIG: rig!.dockerConfig ?? '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`buildx failed (${r.status}): ${r.stderr}`);
}

function write(rel: string, body: string | Buffer, mode = 0o644): void {
  const abs = join(work, 'cmp', rel);
  mkdirSync(join(abs, '..'), { recursive: true });
  writeFileSync(abs, body);
  chmodSync(abs, mode);
}

describe('context upload and local export', () => {
  rigTest(
    `a multi-stage build exports the same tree as docker buildx build${why}`,
    async () => {
      const id = Math.random().toString(36).slice(2);
      write(
        'Dockerfile',
        [
          `FROM ${rig!.baseImage} AS build`,
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
      write('.dockerignore', '*.log\n!keep.log\ntmp/\n**/*.bak\ntoken\n');
      write('exec.sh', '#!/bin/sh\necho hi\n', 0o755);
      write('readonly.txt', 'ro', 0o444);
      write('group-w.txt', 'gw', 0o664);
      write('a.log', 'ignored');
      write('keep.log', 'kept by an exception');
      write('tmp/x', 'ignored dir');
      write('nested/deep/y.bak', 'ignored anywhere');
      write('nested/deep/z.txt', 'z');
      write('sp ace.txt', 'space');
      write('comma, name.txt', 'comma');
      write('ünï cödé.txt', 'unicode');
      write('token', 'the-secret');
      write('zero', '');
      mkdirSync(join(work, 'cmp', 'empty-dir'));
      mkdirSync(join(work, 'cmp', 'nested', 'empty'), { recursive: true });
      symlinkSync('exec.sh', join(work, 'cmp', 'link-rel'));
      symlinkSync('/etc/passwd', join(work, 'cmp', 'link-abs'));
      symlinkSync('missing', join(work, 'cmp', 'link-dangling'));
      symlinkSync('nested', join(work, 'cmp', 'dirlink'));
      linkSync(join(work, 'cmp', 'nested', 'deep', 'z.txt'), join(work, 'cmp', 'hard-z'));
      // Sub-second mtimes must survive the trip (nanoseconds on the wire).
      utimesSync(join(work, 'cmp', 'keep.log'), 1_600_000_000.123456, 1_600_000_000.123456);

      const ours = join(work, 'out-ktl');
      const theirs = join(work, 'out-buildx');
      await solveDockerfile(conn!, {
        contextDir: join(work, 'cmp'),
        buildArgs: { FLAVOR: 'spicy' },
        secrets: { tok: readFileSync(join(work, 'cmp', 'token')) },
        exports: [{ type: 'local', dest: ours }],
      });
      buildx([
        '--build-arg',
        'FLAVOR=spicy',
        '--secret',
        `id=tok,src=${join(work, 'cmp', 'token')}`,
        '-o',
        `type=local,dest=${theirs}`,
        join(work, 'cmp'),
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
      expect(a.has('ctx/a.log') || a.has('ctx/tmp') || a.has('ctx/nested/deep/y.bak')).toBe(false);
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

  rigTest(
    `a multi-platform build: a directory per platform, or merged with platform-split=false, the same trees as docker buildx build${why}`,
    async () => {
      // No RUN step runs a foreign binary: each stage runs on the build platform and only
      // writes what the target platform is (no emulation on this machine).
      const ctx = join(work, 'multi');
      mkdirSync(ctx);
      writeFileSync(
        join(ctx, 'Dockerfile'),
        [
          `FROM --platform=$BUILDPLATFORM ${rig!.baseImage} AS b`,
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
        const ours = join(work, `multi-ktl-${split ?? 'default'}`);
        const theirs = join(work, `multi-buildx-${split ?? 'default'}`);
        await solveDockerfile(conn!, {
          contextDir: ctx,
          platforms,
          exports: [{ type: 'local', dest: ours, attrs }],
        });
        buildx([
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
        `FROM ${rig!.baseImage} AS b\nRUN --mount=type=bind,target=/ctx cd /ctx && find d* -type f | wc -l > /count && find d* -type f | sort | xargs cat | md5sum | cut -d' ' -f1 > /sum\nFROM scratch\nCOPY --from=b /count /sum /\n`,
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
        `FROM ${rig!.baseImage} AS b\nRUN --mount=type=bind,target=/ctx stat -c %s /ctx/big.bin > /size && md5sum /ctx/big.bin | cut -d' ' -f1 > /sum\nFROM scratch\nCOPY --from=b /size /sum /\n`,
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
