import type { RunOptions } from '@ktl/sandbox-runner';
import { Args, Command, Flags } from '@oclif/core';

/** Exit status when the sandbox could not run the command at all (distinct from its own). */
const SANDBOX_FAILED = 71;

function parseBind(spec: string): { src: string; dst: string; readonly: boolean } {
  const [src, dst, mode, ...rest] = spec.split(':');
  if (!src || !dst || rest.length || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new Error(`--bind ${spec}: expected SRC:DST[:ro|rw]`);
  }
  return { src, dst, readonly: mode === 'ro' };
}

function parseEnv(spec: string): [string, string] {
  const i = spec.indexOf('=');
  if (i <= 0) throw new Error(`--env ${spec}: expected K=V`);
  return [spec.slice(0, i), spec.slice(i + 1)];
}

export default class SandboxRun extends Command {
  static override summary =
    'Run a command inside the sandbox (nsjail or bubblewrap) under an nsjail policy.';
  static override description =
    "Exits with the command's own status (128+N when killed by signal N); 71 when the sandbox could not start it; 2 on bad usage.\n" +
    'Without --policy the embedded default policy (testdata/sandbox/linux-ci.cfg) is used.';
  static override examples = [
    '<%= config.bin %> sandbox run -- /bin/sh -c "ls /"',
    '<%= config.bin %> sandbox run --policy testdata/sandbox/hermetic.cfg --bind ./src:/src:ro --cwd /src -- ls',
    '<%= config.bin %> sandbox run --dry-run -- /bin/true',
  ];
  static override strict = false;
  static override args = {
    command: Args.string({ description: 'command and its arguments (after --)', required: true }),
  };
  static override flags = {
    policy: Flags.string({ description: 'policy file (protobuf text or ProtoJSON)' }),
    runtime: Flags.string({
      description: 'sandbox runtime',
      options: ['auto', 'nsjail', 'bwrap'],
      default: 'auto',
    }),
    bind: Flags.string({ description: 'extra bind SRC:DST[:ro]', multiple: true }),
    env: Flags.string({ description: 'environment variable K=V', multiple: true }),
    cwd: Flags.string({ description: 'working directory inside the sandbox' }),
    timeout: Flags.integer({ description: 'seconds before the sandbox is killed', min: 1 }),
    'sandbox-logs': Flags.boolean({
      description: "stream the runtime's log lines as [sandbox] ...",
    }),
    'dry-run': Flags.boolean({
      description: 'print the runtime command line (and nsjail config) instead of running',
    }),
    'dump-seccomp': Flags.boolean({
      description:
        'with --dry-run: print the seccomp BPF program ktl compiles from the policy, disassembled',
      dependsOn: ['dry-run'],
    }),
    'allow-unenforced': Flags.string({
      description: 'policy field the runtime may leave unenforced (bubblewrap)',
      multiple: true,
    }),
  };

  private async dumpSeccomp(options: RunOptions): Promise<void> {
    const { compileKafel, disassemble, hostKafelArch, parseKafel, seccompText } = await import(
      '@ktl/nsjail-config'
    );
    const text = options.policy ? seccompText(options.policy) : undefined;
    if (!text) {
      process.stdout.write('# seccomp: the policy has no seccomp_string: no filter\n');
      return;
    }
    const arch = hostKafelArch();
    const r = parseKafel(text.text, { arch });
    if (!r.ok) this.error(`seccomp policy: ${r.error.message}`, { exit: 71 });
    const prog = compileKafel(r.program, { arch });
    process.stdout.write(
      `# seccomp: ${prog.length} instructions for ${arch}\n${disassemble(prog)}\n`,
    );
  }

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(SandboxRun);
    // Loaded on use: `ktl` start-up must not pay for every command's dependencies.
    const { PolicyError } = await import('@ktl/nsjail-config');
    const { plan, run, SandboxError } = await import('@ktl/sandbox-runner');
    const { loadSandboxPolicy, PolicyLoadError } = await import('../../sandbox/policy');
    const [file, ...args] = argv as string[];
    let options: RunOptions;
    try {
      const { policy } = await loadSandboxPolicy(flags.policy, false);
      options = {
        policy,
        runtime: flags.runtime as 'auto',
        binds: (flags.bind ?? []).map(parseBind),
        env: Object.fromEntries((flags.env ?? []).map(parseEnv)),
        stdio: 'inherit',
        logs: flags['sandbox-logs'] ? 'stream' : 'on-failure',
        onLog: (line) => process.stderr.write(`${line}\n`),
        ...(flags.cwd ? { cwd: flags.cwd } : {}),
        ...(flags.timeout ? { timeout: flags.timeout * 1000 } : {}),
        ...(flags['allow-unenforced'] ? { allowUnenforced: flags['allow-unenforced'] } : {}),
      };
    } catch (e) {
      if (PolicyError.is(e) || e instanceof PolicyLoadError) {
        process.stderr.write(
          `${e.message}${e instanceof PolicyLoadError && e.hint ? `\n  hint: ${e.hint}` : ''}\n`,
        );
        this.exit(SANDBOX_FAILED);
      }
      this.error((e as Error).message, { exit: 2 });
    }
    const controller = new AbortController();
    const onSignal = () => controller.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      if (flags['dry-run']) {
        const p = plan(file!, args, options);
        process.stdout.write(
          `# runtime: ${p.runtime}\n${p.argv.map((a) => (/^[\w./:=@%+,-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ')}\n`,
        );
        if (p.config) process.stdout.write(`# nsjail config:\n${p.config}`);
        for (const n of p.notes) process.stdout.write(`# note: ${n}\n`);
        if (flags['dump-seccomp']) await this.dumpSeccomp(options);
        return;
      }
      const r = await run(file!, args, { ...options, cancelSignal: controller.signal });
      this.exit(r.exitCode ?? 0);
    } catch (e) {
      if (e instanceof Error && 'oclif' in e) throw e;
      const err = SandboxError.from(e);
      if (err.code === 'E_EXIT' || err.code === 'E_SIGNAL') this.exit(err.exitCode ?? 1);
      if (err.code === 'E_CANCELED') this.exit(130);
      process.stderr.write(`ktl: ${err.message}\n`);
      if (err.code === 'E_BAD_OPTION') this.exit(2);
      this.exit(err.code === 'E_TIMEOUT' ? 124 : SANDBOX_FAILED);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
