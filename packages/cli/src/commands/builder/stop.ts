import { Command, Flags } from '@oclif/core';
import { stopManagedBuilder } from '../../builder/managed';

export default class BuilderStop extends Command {
  static override summary = 'Stop the ktl-managed engine (its images and cache are kept).';
  static override description =
    'Exit status: 0 stopped, or nothing was running (said so on stderr).';
  static override examples = ['sudo <%= config.bin %> builder stop'];
  static override flags = {
    timeout: Flags.integer({ description: 'seconds to wait before SIGKILL', default: 30 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(BuilderStop);
    const b = await stopManagedBuilder({
      timeoutMs: flags.timeout * 1000,
      log: (l) => process.stderr.write(`${l}\n`),
    });
    if (b) this.log(`stopped: ${b.engine} (pid ${b.pid}) at ${b.address}`);
    else process.stderr.write('no ktl-managed builder is running\n');
  }
}
