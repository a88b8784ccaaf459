import { Command, Flags } from '@oclif/core';
import { stopManagedBuilder } from '../../builder/managed';

export default class BuilderStop extends Command {
  static override summary =
    'Stop the ktl-managed engine and everything it started (its images and cache are kept).';
  static override description =
    'A rootless engine is stopped with rootlesskit, slirp4netns, containerd and any shim it ' +
    'left: nothing of it keeps running.\n' +
    'Exit status: 0 stopped, or nothing was running (said so on stderr); 4 some of its ' +
    'processes would not end (named on stderr).';
  static override examples = ['<%= config.bin %> builder stop'];
  static override flags = {
    timeout: Flags.integer({ description: 'seconds to wait before SIGKILL', default: 30 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(BuilderStop);
    const { builder: b, left } = await stopManagedBuilder({
      timeoutMs: flags.timeout * 1000,
      log: (l) => process.stderr.write(`${l}\n`),
    });
    if (b)
      this.log(
        `stopped: ${b.engine}${b.rootless ? ' (rootless)' : ''} (pid ${b.pid}) at ${b.address}`,
      );
    else process.stderr.write('no ktl-managed builder is running\n');
    if (left.length > 0) {
      process.stderr.write(
        `ERROR: still running after SIGKILL: ${left.map((p) => `${p.comm} (pid ${p.pid}, uid ${p.uid})`).join(', ')}\n`,
      );
      process.exitCode = 4;
    }
  }
}
