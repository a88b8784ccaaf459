import { defineConfig } from 'tsup';

// ESM and CommonJS, each with its declarations (index.d.ts / index.d.cts), for any Node >= 20
// project. `schema` is its own entry so that only @ktl/nsjail-config/schema loads zod; code the
// two entries share goes into a chunk both load, in each format.
export default defineConfig({
  entry: { index: 'src/index.ts', schema: 'src/schema/index.ts' },
  format: ['esm', 'cjs'],
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
