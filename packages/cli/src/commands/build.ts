import { homedir } from 'node:os';
import { join } from 'node:path';
import { BuildkitError, connect, parseAddress } from '@ktl/buildkit-client';
import { PolicyError } from '@ktl/nsjail-config';
import { Args, Command, Flags } from '@oclif/core';
import { EXIT, runBuild } from '../build/run-build';
import { BindPlanError } from '../sandbox/binds';
import { PolicyLoadError } from '../sandbox/policy';
import { IN_SANDBOX_ENV, runBuildInSandbox, SANDBOX_FAILED_EXIT } from '../sandbox/reexec';
import { selfCheckLines } from '../sandbox/self-check';
import { resolveSandboxSettings, SandboxSettingsError } from '../sandbox/settings';

export default class Build extends Command {
  static override summary =
    'Build a Dockerfile with BuildKit; on Linux the build client runs inside a sandbox.';
  static override description =
    'By default on Linux ktl re-executes itself inside a sandbox (nsjail or bubblewrap) that sees only the context, ' +
    'what the command line names, and a gateway to the builder that forwards only the BuildKit API.\n' +
    'Exit status: 0 built, 1 build failed, 2 bad usage, 3 no builder, 71 the sandbox could not run ktl, 130 canceled.';
  static override examples = [
    '<%= config.bin %> build testdata/build/hello -o type=local,dest=out',
    '<%= config.bin %> build . -t app:dev --build-arg VERSION=1',
    'KTL_SANDBOX_CONFIG=testdata/sandbox/linux-strict.cfg <%= config.bin %> build . --sandbox-logs',
  ];
  static override args = {
    context: Args.string({ description: 'build context directory', required: true }),
  };
  static override flags = {
    file: Flags.string({ char: 'f', description: 'Dockerfile (default CONTEXT/Dockerfile)' }),
    tag: Flags.string({
      char: 't',
      description: 'image name, stored in the builder',
      multiple: true,
    }),
    'build-arg': Flags.string({ description: 'build argument KEY=VALUE', multiple: true }),
    label: Flags.string({ description: 'image label KEY=VALUE', multiple: true }),
    target: Flags.string({ description: 'stage to build' }),
    'no-cache': Flags.boolean({ description: 'do not use the build cache' }),
    output: Flags.string({
      char: 'o',
      description: 'output: type=local,dest=DIR | type=tar,dest=FILE | type=image,name=N',
      multiple: true,
    }),
    push: Flags.boolean({ description: 'push the -t images', dependsOn: ['tag'] }),
    progress: Flags.string({
      description: 'progress output',
      options: ['auto', 'plain', 'quiet'],
      default: 'auto',
    }),
    network: Flags.string({
      description: 'network for RUN steps',
      options: ['default', 'none', 'host'],
    }),
    builder: Flags.string({
      description:
        'builder address (unix://, tcp://, docker://); default: BUILDKIT_HOST, DOCKER_HOST, default sockets',
    }),
    sandbox: Flags.boolean({
      description: 'require the sandbox (fail when no runtime is available)',
    }),
    'sandbox-config': Flags.string({
      description: 'sandbox policy file (nsjail .cfg); also KTL_SANDBOX_CONFIG',
    }),
    'sandbox-runtime': Flags.string({
      description: 'sandbox runtime',
      options: ['auto', 'nsjail', 'bwrap'],
    }),
    'sandbox-logs': Flags.boolean({
      description: "show the sandbox runtime's [sandbox] log lines",
    }),
    'sandbox-bind': Flags.string({
      description: 'extra bind HOST:GUEST[:ro] into the sandbox',
      multiple: true,
    }),
    hermetic: Flags.boolean({
      description: 'no network for the build client (hermetic policy) nor for RUN steps',
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Build);
    const stderr = (s: string) => {
      process.stderr.write(s);
    };
    const controller = new AbortController();
    const onSignal = () => controller.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const buildFlags = {
      context: args.context,
      file: flags.file,
      tag: flags.tag,
      buildArg: flags['build-arg'],
      label: flags.label,
      target: flags.target,
      noCache: flags['no-cache'],
      output: flags.output,
      progress: flags.progress,
      network: flags.network,
      hermetic: flags.hermetic,
      push: flags.push,
    };
    try {
      if (process.env[IN_SANDBOX_ENV] === '1') {
        if (flags['sandbox-logs']) {
          const guests = (flags['sandbox-bind'] ?? [])
            .map((b) => b.split(':')[1] ?? '')
            .filter(Boolean);
          for (const l of selfCheckLines(process.env, guests)) stderr(`${l}\n`);
        }
        this.exit(await runBuild(buildFlags, process.cwd(), stderr, controller.signal));
      }
      const settings = resolveSandboxSettings(
        {
          sandbox: flags.sandbox,
          sandboxConfig: flags['sandbox-config'],
          sandboxRuntime: flags['sandbox-runtime'],
          sandboxLogs: flags['sandbox-logs'],
          hermetic: flags.hermetic,
          network: flags.network,
        },
        process.env,
      );
      if (settings.mode === 'off') {
        if (settings.warning) stderr(`${settings.warning}\n`);
        this.exit(
          await runBuild(
            { ...buildFlags, builder: flags.builder },
            process.cwd(),
            stderr,
            controller.signal,
          ),
        );
      }
      // Find the builder out here: the jail only ever sees the gateway.
      let upstream: ReturnType<typeof parseAddress>;
      try {
        const conn = await connect(flags.builder);
        upstream = parseAddress(conn.address);
        await conn.close();
      } catch (e) {
        stderr(`ktl build: ${BuildkitError.from(e).message}\n`);
        this.exit(EXIT.noBuilder);
      }
      const code = await runBuildInSandbox({
        argv: this.argv.filter(
          (a, i, all) =>
            a !== '--builder' && all[i - 1] !== '--builder' && !a.startsWith('--builder='),
        ),
        cwd: process.cwd(),
        settings,
        upstream,
        entitlements: flags.network === 'host' ? ['network.host'] : [],
        ...(flags.tag?.length ? { imageNames: flags.tag } : {}),
        cacheDir:
          process.env.KTL_CACHE_DIR ??
          join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ktl'),
        stderr,
        signal: controller.signal,
      });
      this.exit(code);
    } catch (e) {
      if (e instanceof Error && 'oclif' in e) throw e;
      if (e instanceof SandboxSettingsError || e instanceof BindPlanError) {
        stderr(`ktl build: ${e.message}\n  hint: ${e.hint}\n`);
        this.exit(EXIT.usage);
      }
      if (PolicyError.is(e) || e instanceof PolicyLoadError) {
        stderr(`ktl build: sandbox policy: ${e.message}\n`);
        this.exit(SANDBOX_FAILED_EXIT);
      }
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
