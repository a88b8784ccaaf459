/**
 * Loads ktl's bundles (dist/ktl.cjs, dist/inner.cjs) through a V8 code cache written at build
 * time, so a ktl process does not re-parse and re-compile ~2 MB of JavaScript on every start.
 * Node 20 has no module compile cache of its own (that came with Node 22), so this does the
 * same thing for CommonJS bundles: `vm.Script` with `cachedData`.
 *
 * The cache files live next to the bundles (`*.cjs.v8cache`), are written by the build
 * (`node dist/boot.cjs --write-code-cache`) and only ever read at run time: never written by
 * a running ktl, so nothing a build (or a jailed process, which sees ktl's install read-only)
 * does can plant code in them. A cache V8 rejects (another Node or V8 flags) costs nothing but
 * the time it saves: the bundle compiles from source as usual.
 *
 * V8 itself only checks that a cache was made for a source of the same *length*: a bundle
 * edited in place without a new cache would run the old code. So each cache file starts with
 * the stamp of the bundle file it was made for (inode, size, modification and change times,
 * nanoseconds: any write to the file moves its change time, which cannot be set back), and a
 * cache for another state of the file is not handed to V8. A stamp rather than a hash of the
 * bytes: hashing needs node:crypto, whose loading alone cost ~5-10 ms of every start (twice
 * per sandboxed build); a copied install gets a fresh stamp, so its caches are ignored (the
 * bundles compile from source) until `node dist/boot.cjs --write-code-cache` runs there.
 *
 * Usage: `node dist/boot.cjs inner` runs the jailed half; bin/run.cjs loads `early` and
 * `build` for `ktl build`, `ktl` for everything else.
 * No dependencies: this file must stay tiny, it runs before anything else.
 */
import {
  type BigIntStats,
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

export type BundleName = 'ktl' | 'build' | 'inner' | 'early';

export interface LoadedBundle {
  exports: Record<string, unknown>;
  /**
   * true: compiled from the cache; false: a cache was there but not used (made for other
   * bytes, or rejected by V8: another Node, other flags); undefined: no cache file.
   */
  cacheUsed: boolean | undefined;
  /** Absent when the bundle was already loaded in this process. */
  script?: vm.Script;
}

interface ModuleInternals {
  _cache: Record<string, Module>;
  _nodeModulePaths(dir: string): string[];
  wrap(source: string): string;
}
const M = Module as unknown as ModuleInternals & typeof Module;

const STAMP_BYTES = 32;

/** A bundle file's stamp (see above), from its fstat/stat. */
function stampOf(st: BigIntStats): Buffer {
  const stamp = Buffer.alloc(STAMP_BYTES);
  stamp.writeBigUInt64LE(st.ino, 0);
  stamp.writeBigUInt64LE(st.size, 8);
  stamp.writeBigUInt64LE(st.mtimeNs, 16);
  stamp.writeBigUInt64LE(st.ctimeNs, 24);
  return stamp;
}

/** The bundle file's stamp and its bytes, from one open file. */
function readBundle(file: string): { stamp: Buffer; bytes: Buffer } {
  const fd = openSync(file, 'r');
  try {
    return { stamp: stampOf(fstatSync(fd, { bigint: true })), bytes: readFileSync(fd) };
  } finally {
    closeSync(fd);
  }
}

function bundlePath(name: BundleName): string {
  return join(__dirname, `${name}.cjs`);
}

/** Evaluates one bundle as a CommonJS module registered under its own path (so oclif's
 * `require` of the same file finds it), compiled from the code cache when V8 accepts it. */
export function load(name: BundleName): LoadedBundle {
  const file = bundlePath(name);
  const cached = M._cache[file];
  if (cached?.loaded) return { exports: cached.exports, cacheUsed: undefined };
  const { stamp, bytes } = readBundle(file);
  const source = bytes.toString('utf8');
  let cachedData: Buffer | undefined;
  let stale = false;
  try {
    const raw = readFileSync(`${file}.v8cache`);
    if (raw.subarray(0, STAMP_BYTES).equals(stamp)) cachedData = raw.subarray(STAMP_BYTES);
    else stale = true;
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(M.wrap(source), {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const mod = new Module(file);
  mod.filename = file;
  mod.paths = M._nodeModulePaths(dirname(file));
  M._cache[file] = mod;
  const wrapper = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: Module,
    filename: string,
    dirname: string,
  ) => void;
  try {
    wrapper.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, dirname(file));
  } catch (e) {
    delete M._cache[file];
    throw e;
  }
  mod.loaded = true;
  return {
    exports: mod.exports as Record<string, unknown>,
    cacheUsed: cachedData ? !script.cachedDataRejected : stale ? false : undefined,
    script,
  };
}

/**
 * Build step: evaluate each bundle once (and run its `warmUp` export, if any: start-up code
 * that is otherwise compiled lazily) and save what V8 compiled.
 */
async function writeCodeCache(): Promise<void> {
  for (const name of ['early', 'build', 'ktl', 'inner'] as const) {
    const file = bundlePath(name);
    const { script, exports } = load(name);
    if (!script) throw new Error(`${file} was loaded before the cache step`);
    if (typeof exports.warmUp === 'function') await (exports.warmUp as () => Promise<void>)();
    const data = Buffer.concat([
      stampOf(statSync(file, { bigint: true })),
      script.createCachedData(),
    ]);
    const tmp = `${file}.v8cache.partial`;
    writeFileSync(tmp, data);
    renameSync(tmp, `${file}.v8cache`);
    process.stdout.write(`code cache: ${file}.v8cache (${data.length} bytes)\n`);
  }
}

if (require.main === module) {
  const arg = process.argv[2];
  if (arg === '--write-code-cache')
    writeCodeCache().catch((e: unknown) => {
      process.stderr.write(`code cache: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    });
  else if (arg === 'inner') (load('inner').exports.main as () => void)();
  else {
    process.stderr.write('usage: node boot.cjs inner | --write-code-cache\n');
    process.exitCode = 2;
  }
}
