import { Args, Command, Flags } from '@oclif/core';

export default class SandboxPolicyExplain extends Command {
  static override summary = 'Say in plain words what a policy lets the jail see and do.';
  static override examples = [
    '<%= config.bin %> sandbox policy explain testdata/sandbox/hermetic.cfg',
  ];
  static override args = { file: Args.string({ description: 'policy file', required: true }) };
  static override flags = { json: Flags.boolean({ description: 'print the sections as JSON' }) };

  async run(): Promise<void> {
    const { explainPolicy, PolicyError, parsePolicyFile, renderExplanation } = await import(
      '@ktl/nsjail-config'
    );
    const { args, flags } = await this.parse(SandboxPolicyExplain);
    try {
      const { policy } = await parsePolicyFile(args.file);
      const sections = explainPolicy(policy);
      if (flags.json) this.log(JSON.stringify(sections, null, 2));
      else process.stdout.write(renderExplanation(sections));
    } catch (e) {
      process.stderr.write(`${PolicyError.from(e, args.file).message}\n`);
      this.exit(1);
    }
  }
}
