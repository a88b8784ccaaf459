import { Command, Flags } from '@oclif/core';
import { BuilderError, startManagedBuilder } from '../../builder/managed';
import { reportParseError } from '../../parse-errors';

export default class BuilderStart extends Command {
  static override summary =
    'Start a ktl-managed BuildKit engine on a private socket: rootless by default.';
  static override description =
    "The engine runs detached under ktl's state directory ($KTL_STATE_DIR, else " +
    '$XDG_STATE_HOME/ktl, else ~/.local/state/ktl); `ktl build` finds it without any variable ' +
    '(after BUILDKIT_HOST and DOCKER_HOST).\n' +
    "By default it is rootless: dockerd in Docker's rootless mode (dockerd-rootless.sh, " +
    'rootlesskit, slirp4netns with host loopback disabled), run as you, or, when ktl runs as ' +
    'root, as the system user ktl-builder (created with a subordinate uid/gid range when ' +
    "absent; its engines' data in its home, /var/lib/ktl-builder). A RUN step then holds no " +
    "more than that user's rights on the host and cannot reach the host's 127.0.0.1, even " +
    'with network.host. Where rootless cannot run (no user namespaces, no newuidmap, an ' +
    'unusable /dev/net/tun, ...) it says which and how to fix it, and starts nothing.\n' +
    '--rootful runs buildkitd or dockerd from PATH as root instead (needs root); a rootful ' +
    'dockerd gets its own bridge, so it runs next to another engine. Its RUN steps granted ' +
    "network.host share the host's network, and security.insecure makes them root on the host.\n" +
    'Exit status: 0 running (started or already up), 2 bad usage (or a builder of the other ' +
    'mode runs), 3 no engine on PATH, 4 the engine did not start (its log is printed) or ' +
    'rootless cannot run here (what is missing is named), 5 --rootful and not root.';
  static override examples = [
    '<%= config.bin %> builder start',
    'sudo <%= config.bin %> builder start --rootful',
    'sudo <%= config.bin %> builder start --rootful --engine dockerd --bridge-cidr 10.99.0.1/24',
  ];
  static override flags = {
    rootful: Flags.boolean({
      description: 'run the engine as root (buildkitd or dockerd from PATH) instead of rootless',
    }),
    engine: Flags.string({
      description: 'which engine to run (rootless: dockerd)',
      options: ['auto', 'dockerd', 'buildkitd'],
      default: 'auto',
    }),
    'bridge-name': Flags.string({
      description: '--rootful dockerd: the bridge RUN steps use (default ktl0)',
    }),
    'bridge-cidr': Flags.string({
      description: "--rootful dockerd: the bridge's address/prefix (default 10.213.0.1/24)",
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
        rootful: flags.rootful,
        engine: flags.engine as 'auto' | 'dockerd' | 'buildkitd',
        ...(flags['bridge-name'] !== undefined ? { bridgeName: flags['bridge-name'] } : {}),
        ...(flags['bridge-cidr'] !== undefined ? { bridgeCidr: flags['bridge-cidr'] } : {}),
        timeoutMs: flags.timeout * 1000,
        log: (l) => process.stderr.write(`${l}\n`),
      });
      const how = builder.rootless ? `rootless, as ${builder.user?.name}` : 'rootful';
      this.log(
        `${alreadyRunning ? 'already running' : 'started'}: ${builder.engine} (${how}, pid ${builder.pid}) at ${builder.address}`,
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
