#!/usr/bin/env node
// `ktl --version` is answered without loading the CLI bundle, in the exact format oclif
// prints: @ktl/cli/VERSION PLATFORM-ARCH node-vX.
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
  const { readFileSync } = await import('node:fs');
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(
    `${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`,
  );
} else {
  // dist/*.cjs through the build's V8 code cache (src/boot.ts).
  const { createRequire } = await import('node:module');
  const { load } = createRequire(import.meta.url)('../dist/boot.cjs');
  // `ktl build`: the sandbox's jail starts before the CLI loads (src/early.ts); the build
  // takes it only if the CLI reads the command line the same way.
  if (argv[0] === 'build' && process.platform === 'linux')
    await load('early').exports.prestart(argv.slice(1));
  await load('ktl').exports.main(import.meta.url);
}
