import type { KafelArch } from '@ktl/nsjail-config';
import { Args, Command, Flags } from '@oclif/core';

export default class SandboxPolicyValidate extends Command {
  static override summary =
    'Check nsjail policies: syntax, settings nsjail refuses or would not apply as written, and risky ones.';
  static override description =
    'Exit status: 0 when every file is valid (warnings allowed), 1 when any has an error, 2 on bad usage.\n' +
    'Diagnostics read FILE:LINE:COL: error|warning|info CODE: message.';
  static override examples = [
    '<%= config.bin %> sandbox policy validate testdata/sandbox/linux-strict.cfg',
    '<%= config.bin %> sandbox policy validate --json policies/*.cfg',
  ];
  static override strict = false;
  static override args = {
    file: Args.string({ description: 'policy files (protobuf text or ProtoJSON)', required: true }),
  };
  static override flags = {
    json: Flags.boolean({ description: "print one JSON object with every file's diagnostics" }),
    arch: Flags.string({
      description: 'architecture whose syscall names seccomp policies use',
      options: ['x86_64', 'aarch64'],
    }),
  };

  async run(): Promise<void> {
    const { checkPolicyFile, formatDiagnostic, hostKafelArch } = await import('@ktl/nsjail-config');
    const { argv, flags } = await this.parse(SandboxPolicyValidate);
    const arch = (flags.arch as KafelArch | undefined) ?? hostKafelArch();
    const results = [];
    for (const file of argv as string[]) results.push(await checkPolicyFile(file, { arch }));
    const valid = results.every((r) => r.valid);
    if (flags.json) {
      this.log(
        JSON.stringify(
          {
            valid,
            files: results.map(({ file, valid, diagnostics }) => ({ file, valid, diagnostics })),
          },
          null,
          2,
        ),
      );
    } else {
      for (const r of results) {
        for (const d of r.diagnostics) process.stderr.write(`${formatDiagnostic(d, r.file)}\n`);
        const errors = r.diagnostics.filter((d) => d.severity === 'error').length;
        const warnings = r.diagnostics.filter((d) => d.severity === 'warning').length;
        process.stderr.write(
          `${r.file}: ${r.valid ? 'valid' : 'invalid'} (${errors} error(s), ${warnings} warning(s))\n`,
        );
      }
    }
    if (!valid) this.exit(1);
  }
}
