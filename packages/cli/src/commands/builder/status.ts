import { Command, Flags } from '@oclif/core';
import { builderDir, readManagedBuilder } from '../../builder/managed';

export default class BuilderStatus extends Command {
  static override summary = 'Show the ktl-managed engine, if one is running.';
  static override description =
    'Says whether it is rootless (and as which user) or rootful. Exit status: 0 running, 1 not running.';
  static override examples = ['<%= config.bin %> builder status --json'];
  static override flags = { json: Flags.boolean({ description: 'print the state as JSON' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(BuilderStatus);
    const b = readManagedBuilder();
    if (flags.json)
      this.log(
        JSON.stringify(
          b ? { running: true, ...b, rootless: Boolean(b.rootless) } : { running: false },
        ),
      );
    else if (b) {
      this.log(
        `running: ${b.engine} (${b.rootless ? `rootless, as ${b.user?.name}` : 'rootful'}, pid ${b.pid}) at ${b.address} since ${b.startedAt}`,
      );
      this.log(`log: ${b.log}`);
      this.log(`dir: ${b.dir}`);
      if (b.bridge) this.log(`bridge: ${b.bridge.name} ${b.bridge.cidr}`);
    } else this.log(`not running (state dir ${builderDir()})`);
    if (!b) process.exitCode = 1;
  }
}
