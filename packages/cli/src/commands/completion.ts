import { Args, Command } from '@oclif/core';
import { type CompletionModel, completionScript, SHELLS, type Shell } from '../completion';

export default class Completion extends Command {
  static override summary = 'Print the shell completion script for bash or zsh.';
  static override description =
    'Completes commands, topics, flags and the values of flags with a fixed set; anything else completes as file names. ' +
    'The script is static: nothing runs ktl when you press tab.';
  static override examples = [
    'source <(<%= config.bin %> completion bash)',
    '<%= config.bin %> completion bash > ~/.local/share/bash-completion/completions/<%= config.bin %>',
    'source <(<%= config.bin %> completion zsh)',
  ];
  static override args = {
    shell: Args.string({ description: 'the shell', required: true, options: [...SHELLS] }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Completion);
    const model: CompletionModel = {
      bin: this.config.bin,
      topics: this.config.topics.filter((t) => !t.hidden),
      commands: this.config.commands
        .filter((c) => !c.hidden)
        .map((c) => ({
          id: c.id,
          summary: c.summary ?? c.description,
          flags: Object.entries(c.flags ?? {})
            .filter(([, f]) => !f.hidden)
            .map(([name, f]) => ({
              name,
              char: f.char,
              summary: f.summary ?? f.description,
              takesValue: f.type !== 'boolean',
              options: f.type === 'option' ? f.options : undefined,
            })),
          argOptions: Object.values(c.args ?? {})[0]?.options,
        })),
    };
    process.stdout.write(completionScript(args.shell as Shell, model));
  }
}
