/**
 * dist/boot.cjs loads ktl's bundles through the V8 code cache the build writes: used when V8
 * accepts it, ignored (the bundle compiles from source) when it does not, never required.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from '@jest/globals';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const built = existsSync(join(dist, 'boot.cjs'));
const distTest = built ? test : test.skip;
const why = built ? '' : ' (skipped: packages/cli/dist is not built; run pnpm build)';

const work = mkdtempSync(join(tmpdir(), 'ktl-boot-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Loads bundle `name` with the boot.cjs in `dir`; prints {cacheUsed, answer}. */
function load(dir: string, name: string) {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const b = require(${JSON.stringify(join(dir, 'boot.cjs'))}).load(${JSON.stringify(name)});
       const answer = typeof b.exports.answer === 'function' ? b.exports.answer() : typeof b.exports.main;
       console.log(JSON.stringify({ cacheUsed: b.cacheUsed ?? null, answer }));`,
    ],
    { encoding: 'utf8' },
  );
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { cacheUsed: boolean | null; answer: unknown };
}

distTest(`a bundle loads without a cache, with it, and with a corrupt one${why}`, () => {
  const dir = join(work, 'fake');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(dist, 'boot.cjs'), join(dir, 'boot.cjs'));
  const body = (n: number) =>
    `"use strict"; const sq = (x) => x * x; exports.answer = () => sq(${n}) + require('node:path').sep.length;`;
  writeFileSync(join(dir, 'ktl.cjs'), body(6));
  writeFileSync(join(dir, 'inner.cjs'), body(3));
  writeFileSync(join(dir, 'early.cjs'), body(2));
  writeFileSync(join(dir, 'build.cjs'), body(5));

  expect(load(dir, 'ktl')).toEqual({ cacheUsed: null, answer: 37 });

  const w = spawnSync(process.execPath, [join(dir, 'boot.cjs'), '--write-code-cache'], {
    encoding: 'utf8',
  });
  expect(w.status).toBe(0);
  expect(w.stdout).toMatch(/code cache: .*ktl\.cjs\.v8cache \(\d+ bytes\)/);
  expect(existsSync(join(dir, 'inner.cjs.v8cache'))).toBe(true);
  expect(load(dir, 'ktl')).toEqual({ cacheUsed: true, answer: 37 });
  expect(load(dir, 'inner')).toEqual({ cacheUsed: true, answer: 10 });
  expect(load(dir, 'early')).toEqual({ cacheUsed: true, answer: 5 });
  expect(load(dir, 'build')).toEqual({ cacheUsed: true, answer: 26 });

  // Garbage after the stamp: V8 rejects it and the bundle compiles from its source.
  const cache = readFileSync(join(dir, 'ktl.cjs.v8cache'));
  for (let i = 32; i < cache.length; i += 7) cache[i] = cache[i]! ^ 0xff;
  writeFileSync(join(dir, 'ktl.cjs.v8cache'), cache);
  expect(load(dir, 'ktl')).toEqual({ cacheUsed: false, answer: 37 });

  // A cache made for another source of the same length, which V8 alone would take (it only
  // compares lengths): the bundle file's stamp keeps it out, also with its mtime set back.
  const innerFile = join(dir, 'inner.cjs');
  const { atime, mtime } = statSync(innerFile);
  writeFileSync(innerFile, body(4));
  utimesSync(innerFile, atime, mtime);
  expect(load(dir, 'inner')).toEqual({ cacheUsed: false, answer: 17 });
  // A bundle put back byte for byte is another file state too: compiled from source, until
  // the cache is written again.
  writeFileSync(join(dir, 'early.cjs'), body(2));
  expect(load(dir, 'early')).toEqual({ cacheUsed: false, answer: 5 });
  expect(spawnSync(process.execPath, [join(dir, 'boot.cjs'), '--write-code-cache']).status).toBe(0);
  expect(load(dir, 'early')).toEqual({ cacheUsed: true, answer: 5 });
});

distTest(`the built bundles' caches are accepted by this Node${why}`, () => {
  expect(load(dist, 'ktl')).toEqual({ cacheUsed: true, answer: 'function' });
  expect(load(dist, 'inner')).toEqual({ cacheUsed: true, answer: 'function' });
  // The early start's bundle has no main: it exports prestart; the build's exports run.
  expect(load(dist, 'early')).toEqual({ cacheUsed: true, answer: 'undefined' });
  expect(load(dist, 'build')).toEqual({ cacheUsed: true, answer: 'undefined' });
});

distTest(`boot.cjs refuses an unknown argument${why}`, () => {
  const r = spawnSync(process.execPath, [join(dist, 'boot.cjs'), 'nope'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain('usage: node boot.cjs inner | --write-code-cache');
});

// Node 20 drops a vm.Script's dynamic-import callback when the script is compiled from a code
// cache: an `import()` left in a bundle fails at run time ("A dynamic import callback was not
// specified") though it worked while the cache was written. tsup compiles them to require().
distTest(`the built bundles hold no dynamic import()${why}`, () => {
  for (const name of ['ktl', 'build', 'inner', 'early']) {
    const src = readFileSync(join(dist, `${name}.cjs`), 'utf8');
    expect({ name, imports: src.match(/\bimport\(\s*["'`][^"'`]*["'`]\s*\)/g) ?? [] }).toEqual({
      name,
      imports: [],
    });
  }
});
