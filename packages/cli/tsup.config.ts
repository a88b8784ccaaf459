import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // The default sandbox policies are compiled into the CLI, so a build never depends on a
  // policy file an attacker could swap on disk.
  loader: { '.cfg': 'text' },
});
