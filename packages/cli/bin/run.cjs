#!/usr/bin/env node
// CommonJS, as bin/ktl is: an ES module entry point costs every ktl process ~10 ms more
// (Node's ESM loader starting up), and nothing here needs one.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
  // `ktl --version` is answered without loading the CLI bundle, in the exact format oclif
  // prints: @ktl/cli/VERSION PLATFORM-ARCH node-vX.
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));
  process.stdout.write(
    `${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`,
  );
} else {
  // dist/*.cjs through the build's V8 code cache (src/boot.ts).
  const { load } = require('../dist/boot.cjs');
  // `ktl build`: the command line is read without oclif (src/early.ts), the sandbox's jail
  // starts at once, and the build runs from its own bundle (src/build-main.ts). A command line
  // that reader is not sure of (--help, unusual flag forms, errors) goes to oclif.
  const main = async () => {
    const read =
      argv[0] === 'build' ? await load('early').exports.prestart(argv.slice(1)) : undefined;
    if (read) await load('build').exports.run(read);
    else await load('ktl').exports.main(pathToFileURL(__filename).href);
  };
  main().catch((e) => {
    process.stderr.write(`ktl: ${e?.stack ?? e}\n`);
    process.exitCode = 1;
  });
}
