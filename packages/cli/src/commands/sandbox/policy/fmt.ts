import { readFile, rename, writeFile } from 'node:fs/promises';
import { Args, Command, Flags } from '@oclif/core';

export default class SandboxPolicyFmt extends Command {
  static override summary = 'Format nsjail policies, keeping comments and field order.';
  static override description =
    'Prints the formatted policy, or rewrites the files with --write, or with --check exits 1 when any file is not formatted.';
  static override examples = [
    '<%= config.bin %> sandbox policy fmt policy.cfg',
    '<%= config.bin %> sandbox policy fmt --write testdata/sandbox/*.cfg',
    '<%= config.bin %> sandbox policy fmt --check testdata/sandbox/*.cfg',
  ];
  static override strict = false;
  static override args = { file: Args.string({ description: 'policy files', required: true }) };
  static override flags = {
    write: Flags.boolean({
      char: 'w',
      description: 'rewrite the files in place (atomically)',
      exclusive: ['check'],
    }),
    check: Flags.boolean({
      description: 'only report files that are not formatted (exit 1)',
      exclusive: ['write'],
    }),
  };

  async run(): Promise<void> {
    const { formatPolicy, PolicyError } = await import('@ktl/nsjail-config');
    const { argv, flags } = await this.parse(SandboxPolicyFmt);
    let failed = false;
    for (const file of argv as string[]) {
      try {
        // Bytes in, bytes out: text policies are kept byte for byte (non-UTF-8 included).
        const text = await readFile(file);
        const out = formatPolicy(text, { filename: file });
        if (flags.check) {
          if (!text.equals(out)) {
            process.stderr.write(
              `${file}: not formatted (run ktl sandbox policy fmt --write ${file})\n`,
            );
            failed = true;
          }
        } else if (flags.write) {
          if (!text.equals(out)) {
            const tmp = `${file}.ktl-fmt-${process.pid}`;
            await writeFile(tmp, out);
            await rename(tmp, file);
          }
        } else process.stdout.write(out);
      } catch (e) {
        const err = PolicyError.from(e, file);
        process.stderr.write(`${err.message}\n`);
        failed = true;
      }
    }
    if (failed) this.exit(1);
  }
}
