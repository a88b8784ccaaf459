import { Args, Command, Flags, loadHelpClass } from '@oclif/core';

/** `ktl help [COMMAND...]`: the same help `--help` shows, as oclif's help plugin gives it. */
export default class Help extends Command {
  static override summary = 'Show help for ktl, a topic or a command.';
  static override examples = [
    '<%= config.bin %> help build',
    '<%= config.bin %> help sandbox policy',
  ];
  static override strict = false;
  static override args = {
    command: Args.string({ description: 'the topic or command (its words as typed)' }),
  };
  static override flags = {
    'nested-commands': Flags.boolean({
      char: 'n',
      description: 'list the commands of nested topics too',
    }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Help);
    const words = argv as string[];
    const id = words.join(':');
    if (id && !this.config.findCommand(id) && !this.config.findTopic(id)) {
      this.error(`no command or topic "${words.join(' ')}" (${this.config.bin} help lists them)`, {
        exit: 2,
      });
    }
    const HelpClass = await loadHelpClass(this.config);
    await new HelpClass(this.config, { all: flags['nested-commands'] }).showHelp(words);
  }
}
