import Build from './commands/build';
import BuilderDu from './commands/builder/du';
import BuilderLs from './commands/builder/ls';
import BuilderPrune from './commands/builder/prune';
import BuilderStart from './commands/builder/start';
import BuilderStatus from './commands/builder/status';
import BuilderStop from './commands/builder/stop';
import Completion from './commands/completion';
import Help from './commands/help';
import SandboxDoctor from './commands/sandbox/doctor';
import SandboxPolicyExplain from './commands/sandbox/policy/explain';
import SandboxPolicyFmt from './commands/sandbox/policy/fmt';
import SandboxPolicyValidate from './commands/sandbox/policy/validate';
import SandboxRun from './commands/sandbox/run';
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
  help: Help,
  completion: Completion,
};

/** Runs the CLI (bin/run.cjs loads this bundle through dist/boot.cjs's code cache). */
export async function main(dir: string): Promise<void> {
  mark('outer: bundle loaded');
  const { execute } = await import('@oclif/core');
  await execute({ dir });
}

/** Build step only (dist/boot.cjs --write-code-cache). */
export { warmOuterBuild as warmUp } from './sandbox/warm-outer';
