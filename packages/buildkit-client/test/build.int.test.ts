/**
 * solveDockerfile end to end on each engine (engines.ts): the rig's Docker 26.1 and the
 * Docker 20.10 compatibility engine (BuildKit v0.8).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { type BuildkitConnection, BuildkitError, connect, solveDockerfile } from '../src/index';
import { gate, testEngines } from './engines';

const engines = await testEngines();
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ktl-build-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(work, `${name}-`));
  for (const [p, body] of Object.entries(files)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), body);
  }
  return dir;
}

describe.each(engines.map((e) => [e.label, e] as const))('solveDockerfile on %s', (_l, engine) => {
  const { test: rigTest, why } = gate(engine);
  const base = engine.baseImage;
  let conn: BuildkitConnection | undefined;
  beforeAll(async () => {
    if (!engine.down) conn = await connect(`docker://${engine.dockerHost}`);
  });
  afterAll(async () => {
    await conn?.close();
  });

  rigTest(
    `builds RUN echo hi > /hello and exports it locally${why}`,
    async () => {
      const ctx = await context('hello', { Dockerfile: `FROM ${base}\nRUN echo hi > /hello\n` });
      const out = join(work, `hello-out-${engine.id}`);
      const names: string[] = [];
      const res = await solveDockerfile(conn!, {
        contextDir: ctx,
        exports: [{ type: 'local', dest: out }],
        onStatus: (s) => names.push(...s.vertexes.map((v) => v.name)),
      });
      expect(await readFile(join(out, 'hello'), 'utf8')).toBe('hi\n');
      expect((await stat(join(out, 'bin'))).isDirectory()).toBe(true);
      expect(names).toContain('[2/2] RUN echo hi > /hello');
      expect(res.ref).toMatch(/^[0-9a-z]{25}$/);
    },
    60_000,
  );

  rigTest(
    `sends the context filtered by .dockerignore, patterns with ", " intact${why}`,
    async () => {
      const ctx = await context('ignore', {
        Dockerfile: `FROM ${base}\nCOPY . /ctx\n`,
        '.dockerignore': '*.log\nx, y.txt\nsub/*\n!sub/keep.txt\n',
        'a.txt': 'a',
        'debug.log': 'no',
        'x, y.txt': 'no',
        'sub/keep.txt': 'yes',
        'sub/drop.txt': 'no',
      });
      const out = join(work, `ignore-out-${engine.id}`);
      await solveDockerfile(conn!, { contextDir: ctx, exports: [{ type: 'local', dest: out }] });
      expect((await readdir(join(out, 'ctx'))).sort()).toEqual([
        '.dockerignore',
        'Dockerfile',
        'a.txt',
        'sub',
      ]);
      expect(await readdir(join(out, 'ctx', 'sub'))).toEqual(['keep.txt']);
    },
    60_000,
  );

  rigTest(
    `a failing RUN rejects with E_SOLVE and the exit code${why}`,
    async () => {
      const ctx = await context('fail', { Dockerfile: `FROM ${base}\nRUN exit 3\n` });
      let err: unknown;
      try {
        await solveDockerfile(conn!, { contextDir: ctx });
      } catch (e) {
        err = e;
      }
      expect(BuildkitError.is(err)).toBe(true);
      expect((err as BuildkitError).code).toBe('E_SOLVE');
      // BuildKit's own words: v0.13 `process "/bin/sh -c exit 3" did not complete
      // successfully: exit code: 3`, v0.8 `executor failed running [/bin/sh -c exit 3]: ...`.
      expect((err as BuildkitError).message).toMatch(/ exit 3.*: exit code: 3$/);
    },
    60_000,
  );

  rigTest(
    `exports a tar of the result through FileSend raw bytes${why}`,
    async () => {
      const ctx = await context('tar', { Dockerfile: `FROM ${base}\nRUN echo tarred > /t\n` });
      const dest = join(work, `out-${engine.id}.tar`);
      await solveDockerfile(conn!, { contextDir: ctx, exports: [{ type: 'tar', dest }] });
      const tar = await readFile(dest);
      // ustar magic of the first header, and our file among the entry names.
      expect(tar.subarray(257, 262).toString('latin1')).toBe('ustar');
      expect(tar.includes(Buffer.from('tarred\n'))).toBe(true);
    },
    60_000,
  );

  rigTest(
    `the Control.Session tunnel (buildkitd's way) carries the session too${why}`,
    async () => {
      const viaControl = await connect(`docker://${engine.dockerHost}`, {
        sessionTransport: 'control',
      });
      try {
        const ctx = await context('ctl', {
          Dockerfile: `FROM ${base}\nCOPY big.bin /big.bin\nRUN echo ctl > /ctl\n`,
          'big.bin': 'x'.repeat(3 * 1024 * 1024),
        });
        const out = join(work, `ctl-out-${engine.id}`);
        await solveDockerfile(viaControl, {
          contextDir: ctx,
          exports: [{ type: 'local', dest: out }],
        });
        expect(await readFile(join(out, 'ctl'), 'utf8')).toBe('ctl\n');
        expect((await stat(join(out, 'big.bin'))).size).toBe(3 * 1024 * 1024);
      } finally {
        await viaControl.close();
      }
    },
    60_000,
  );
});
