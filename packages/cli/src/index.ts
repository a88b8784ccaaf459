import Build from './commands/build';
import BuilderDu from './commands/builder/du';
import BuilderLs from './commands/builder/ls';
import BuilderPrune from './commands/builder/prune';
import BuilderStart from './commands/builder/start';
import BuilderStatus from './commands/builder/status';
import BuilderStop from './commands/builder/stop';
import SandboxDoctor from './commands/sandbox/doctor';
import SandboxPolicyExplain from './commands/sandbox/policy/explain';
import SandboxPolicyFmt from './commands/sandbox/policy/fmt';
import SandboxPolicyValidate from './commands/sandbox/policy/validate';
import SandboxRun from './commands/sandbox/run';

// oclif "explicit" command discovery: one import per command keeps start-up free of
// directory scans (ktl --version must stay close to a bare `node -e 0`).
export const commands = {
  build: Build,
  'builder:start': BuilderStart,
  'builder:stop': BuilderStop,
  'builder:status': BuilderStatus,
  'builder:ls': BuilderLs,
  'builder:du': BuilderDu,
  'builder:prune': BuilderPrune,
  'sandbox:policy:validate': SandboxPolicyValidate,
  'sandbox:policy:fmt': SandboxPolicyFmt,
  'sandbox:policy:explain': SandboxPolicyExplain,
  'sandbox:run': SandboxRun,
  'sandbox:doctor': SandboxDoctor,
};

/** Runs the CLI (bin/run.js loads this bundle through dist/boot.cjs's code cache). */
export async function main(dir: string): Promise<void> {
  const { execute } = await import('@oclif/core');
  await execute({ dir });
}

/**
 * Build step only (dist/boot.cjs --write-code-cache): runs what a sandboxed `ktl build` runs
 * before its jail starts (options, the embedded policies, the bind plan, the runtime's argv)
 * once, without side effects, so that the code cache holds those functions compiled too.
 * Best effort: a machine without bubblewrap still gets a cache, only a colder one.
 */
export async function warmUp(): Promise<void> {
  const [{ parseBuildOptions }, { loadSandboxPolicy }, { planBuildBinds }, runner] =
    await Promise.all([
      import('./build/options'),
      import('./sandbox/policy'),
      import('./sandbox/binds'),
      import('@ktl/sandbox-runner'),
    ]);
  await Promise.all([import('./sandbox/reexec'), import('./sandbox/handover')]);
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const cwd = mkdtempSync(join(tmpdir(), 'ktl-warm-'));
  try {
    writeFileSync(join(cwd, 'Dockerfile'), 'FROM scratch\n');
    await warmSandboxStart(cwd, parseBuildOptions, loadSandboxPolicy, planBuildBinds, runner);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

async function warmSandboxStart(
  cwd: string,
  parseBuildOptions: typeof import('./build/options').parseBuildOptions,
  loadSandboxPolicy: typeof import('./sandbox/policy').loadSandboxPolicy,
  planBuildBinds: typeof import('./sandbox/binds').planBuildBinds,
  runner: typeof import('@ktl/sandbox-runner'),
): Promise<void> {
  const options = parseBuildOptions(
    { context: '.', tag: ['warm:up'], output: ['type=local,dest=out'], progress: 'plain' },
    { cwd, env: {}, stderrIsTTY: false },
  );
  const { binds } = planBuildBinds(options, [], cwd);
  for (const hermetic of [false, true]) {
    const { policy } = await loadSandboxPolicy(undefined, hermetic);
    try {
      runner.plan(process.execPath, ['-e', '0'], {
        policy,
        runtime: 'bwrap',
        binds: binds.map((b) => ({ src: b.src, dst: b.dst, readonly: b.readonly })),
        env: { HOME: '/tmp' },
        cwd,
      });
    } catch {
      // no bubblewrap here: the plan's code stays uncompiled in the cache
    }
  }
}
