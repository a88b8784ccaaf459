import type { KafelArch } from '@ktl/nsjail-config';
import { Args, Command, Flags } from '@oclif/core';

export default class SandboxPolicyExplain extends Command {
  static override summary = 'Say in plain words what a policy lets the jail see and do.';
  static override description =
    'The seccomp section follows kafel, as nsjail compiles it, and says where the filter ktl ' +
    'compiles for bubblewrap does otherwise (it kills x32 system calls before any rule); ' +
    '--runtime describes one runtime only.';
  static override examples = [
    '<%= config.bin %> sandbox policy explain testdata/sandbox/hermetic.cfg',
    '<%= config.bin %> sandbox policy explain --runtime bwrap testdata/sandbox/linux-strict.cfg',
  ];
  static override args = { file: Args.string({ description: 'policy file', required: true }) };
  static override flags = {
    json: Flags.boolean({ description: 'print the sections as JSON' }),
    runtime: Flags.string({
      description: 'describe the seccomp filter this runtime applies',
      options: ['nsjail', 'bwrap'],
    }),
    arch: Flags.string({
      description: 'architecture the jail runs on (default: this machine)',
      options: ['x86_64', 'aarch64'],
    }),
  };

  async run(): Promise<void> {
    const { explainPolicy, PolicyError, parsePolicyFile, renderExplanation } = await import(
      '@ktl/nsjail-config'
    );
    const { args, flags } = await this.parse(SandboxPolicyExplain);
    try {
      const { policy } = await parsePolicyFile(args.file);
      const sections = explainPolicy(policy, {
        runtime: flags.runtime as 'nsjail' | 'bwrap' | undefined,
        arch: flags.arch as KafelArch | undefined,
      });
      if (flags.json) this.log(JSON.stringify(sections, null, 2));
      else process.stdout.write(renderExplanation(sections));
    } catch (e) {
      process.stderr.write(`${PolicyError.from(e, args.file).message}\n`);
      this.exit(1);
    }
  }
}
