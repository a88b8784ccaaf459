import { createRequire } from 'node:module';
import { defineConfig, type Options } from 'tsup';

type Plugin = NonNullable<Options['esbuildPlugins']>[number];

// Every ktl process pays its start-up, so the CLI ships as self-contained CommonJS bundles
// (dependencies inlined: no module resolution over hundreds of files) that dist/boot.cjs
// loads through a V8 code cache written at build time (see src/boot.ts).
const bundle = {
  format: ['cjs'] as const,
  outExtension: () => ({ js: '.cjs' }),
  platform: 'node' as const,
  target: 'node20',
  splitting: false,
  sourcemap: true,
  clean: false,
  // import.meta.url for the CommonJS output (reexec.ts finds ktl's install from it).
  shims: true,
  // Half the bytes to read and hash at every start; stack traces map back through the .map
  // files (node --enable-source-maps).
  minify: true,
  // `await import('node:x')` stays a real dynamic import in CommonJS output, and Node 20 loses
  // a vm.Script's dynamic-import callback when the script comes from a code cache ("A dynamic
  // import callback was not specified"): compile every import() to a require().
  esbuildOptions(o: { supported?: Record<string, boolean> }) {
    o.supported = { ...o.supported, 'dynamic-import': false };
  },
};

// The workspace packages from their sources, through the `ktl-source` condition of their
// exports (their dist files are single modules whose top level loads grpc-js and the generated
// clients): with `sideEffects: false`, only the modules a bundle uses end up in it.
const FROM_SOURCES = ['ktl-source'];

// @grpc/grpc-js is CommonJS without a `sideEffects` field, so esbuild keeps every import of it
// even when nothing imported is used; loading it has no effect anyone relies on.
const grpcWithoutSideEffects: Plugin = {
  name: 'grpc-without-side-effects',
  setup(build) {
    build.onResolve({ filter: /^@grpc\/grpc-js$/ }, (args) => ({
      path: createRequire(args.importer).resolve(args.path),
      sideEffects: false,
    }));
  },
};

/** A bundle built from the workspace packages' sources (FROM_SOURCES), dependencies inlined. */
function fromSources(
  entry: Record<string, string>,
  use: { policies: boolean; grpc: boolean },
): Options {
  return {
    ...bundle,
    entry,
    noExternal: [/.*/],
    ...(use.policies ? { loader: { '.cfg': 'text' as const } } : {}),
    esbuildOptions(o) {
      bundle.esbuildOptions(o);
      o.conditions = FROM_SOURCES;
    },
    ...(use.grpc ? { esbuildPlugins: [grpcWithoutSideEffects] } : {}),
  };
}

export default defineConfig([
  {
    ...bundle,
    // The outer CLI: oclif and every command. Modules reached only through `await import()`
    // (the sandbox half, the renderers) are evaluated when first used, not at start-up.
    entry: { ktl: 'src/index.ts' },
    noExternal: [/.*/],
    // oclif reaches for typescript only when run from TypeScript sources (ts-node), never here.
    esbuildOptions(o) {
      bundle.esbuildOptions(o);
      o.external = [...(o.external ?? []), 'typescript'];
    },
    // The default sandbox policies are compiled into the CLI, so a build never depends on a
    // policy file an attacker could swap on disk.
    loader: { '.cfg': 'text' },
  },
  // `ktl build`'s fast path (src/build-main.ts): the build command without oclif.
  fromSources({ build: 'src/build-main.ts' }, { policies: true, grpc: true }),
  // The jailed half of a sandboxed build: it only serves the build session, so what it does
  // not use stays out: no gRPC client is made in the jail (the session is the engine's
  // /session upgrade), so @grpc/grpc-js, whose import alone costs the jail's start-up ~20 ms,
  // is dropped once nothing uses it.
  fromSources({ inner: 'src/inner.ts' }, { policies: false, grpc: true }),
  // The sandbox's early start (src/early.ts): run before the build's bundle loads, so it
  // holds only what reads the command line and plans and starts the jail.
  fromSources({ early: 'src/early.ts' }, { policies: true, grpc: false }),
  {
    ...bundle,
    // The loader: no dependencies, runs first.
    entry: { boot: 'src/boot.ts' },
  },
]);
