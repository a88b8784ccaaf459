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
  // `ktl build`: the command line is read without oclif (src/early.ts), the sandbox's jail
  // starts at once, and the build runs from its own bundle (src/build-main.ts). A command line
  // that reader is not sure of (--help, unusual flag forms, errors) goes to oclif.
  const read =
    argv[0] === 'build' ? await load('early').exports.prestart(argv.slice(1)) : undefined;
  if (read) await load('build').exports.run(read);
  else await load('ktl').exports.main(import.meta.url);
}
