import { defineConfig } from 'tsup';

// ESM and CommonJS, each with its declarations (index.d.ts / index.d.cts), for any Node >= 20
// project. The default policy (testdata/sandbox/linux-ci.cfg) is compiled in as text, so a run
// never depends on a policy file on disk.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  loader: { '.cfg': 'text' },
});
