import { Command, Flags } from '@oclif/core';
import { BuilderError, startManagedBuilder } from '../../builder/managed';
import { reportParseError } from '../../parse-errors';

export default class BuilderStart extends Command {
  static override summary =
    'Start a ktl-managed BuildKit engine (buildkitd or dockerd from PATH) on a private socket.';
  static override description =
    "The engine runs detached under ktl's state directory ($KTL_STATE_DIR, else " +
    '$XDG_STATE_HOME/ktl, else ~/.local/state/ktl); `ktl build` finds it without any variable ' +
    '(after BUILDKIT_HOST and DOCKER_HOST). A dockerd gets its own bridge, so it runs next to ' +
    'another engine. Needs root.\n' +
    'Exit status: 0 running (started or already up), 2 bad usage, 3 no engine on PATH, ' +
    '4 the engine did not start (its log is printed), 5 not root.';
  static override examples = [
    'sudo <%= config.bin %> builder start',
    'sudo <%= config.bin %> builder start --engine dockerd --bridge-cidr 10.99.0.1/24',
  ];
  static override flags = {
    engine: Flags.string({
      description: 'which engine to run',
      options: ['auto', 'dockerd', 'buildkitd'],
      default: 'auto',
    }),
    'bridge-name': Flags.string({
      description: 'dockerd: the bridge RUN steps use (default ktl0)',
    }),
    'bridge-cidr': Flags.string({
      description: "dockerd: the bridge's address/prefix (default 10.213.0.1/24)",
    }),
    timeout: Flags.integer({
      description: 'seconds to wait for the engine to answer',
      default: 60,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(BuilderStart);
    try {
      const { builder, alreadyRunning } = await startManagedBuilder({
        engine: flags.engine as 'auto' | 'dockerd' | 'buildkitd',
        ...(flags['bridge-name'] ? { bridgeName: flags['bridge-name'] } : {}),
        ...(flags['bridge-cidr'] ? { bridgeCidr: flags['bridge-cidr'] } : {}),
        timeoutMs: flags.timeout * 1000,
      });
      this.log(
        `${alreadyRunning ? 'already running' : 'started'}: ${builder.engine} (pid ${builder.pid}) at ${builder.address}`,
      );
      this.log(`log: ${builder.log}`);
      this.log(
        '`ktl build` uses it when BUILDKIT_HOST and DOCKER_HOST are unset; stop it with `ktl builder stop`.',
      );
    } catch (e) {
      if (!(e instanceof BuilderError)) throw e;
      process.stderr.write(`ERROR: ${e.message}\nhint: ${e.hint}\n`);
      process.exitCode = e.exitCode;
    }
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    return reportParseError(err, 'builder start') ? undefined : super.catch(err);
  }
}
