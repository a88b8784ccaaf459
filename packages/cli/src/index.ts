import { connect } from '@ktl/buildkit-client';
import { managedCandidates } from './builder/managed';
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
import { takeEarlyJail, waitingEarlyJail } from './sandbox/early-handoff';
import { mark } from './timing';

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
  mark('outer: bundle loaded');
  // A jail started early (src/early.ts) for `ktl build`: its builder is looked for while oclif
  // loads and parses; the build takes both if oclif reads the command line the same way.
  const early = waitingEarlyJail();
  if (early && !early.found && process.env.XX_NO_EARLY_DISCOVERY !== '1') {
    early.found = connect(early.builder, { preferred: managedCandidates(process.env) });
    early.found.catch(() => {}); // reported by the build that takes it
  }
  const { execute } = await import('@oclif/core');
  try {
    await execute({ dir });
  } finally {
    // Not taken (the command ended before it could): stopped, nothing left behind.
    const left = takeEarlyJail(undefined);
    await left.discarded;
    if (left.interrupted) process.exitCode = 130;
  }
}

/** Build step only (dist/boot.cjs --write-code-cache): see sandbox/warm.ts. */
export async function warmUp(): Promise<void> {
  const [{ warmSandboxStart }] = await Promise.all([
    import('./sandbox/warm'),
    import('./sandbox/reexec'),
    import('./sandbox/handover'),
  ]);
  await warmSandboxStart();
}
