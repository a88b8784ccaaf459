/**
 * The jailed half of a sandboxed `ktl build` (started by sandbox/reexec.ts inside the jail):
 * reads the options the outer ktl validated from /run/ktl/build.json and runs the build. No
 * CLI framework and no second parse, so the sandbox costs little more than the runtime itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from './build/exit-codes';
import { runBuild } from './build/run';
import { INNER_SPEC_FILE, type InnerSpec, outputPaths, unboundOutputs } from './sandbox/inner-spec';
import { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT } from './sandbox/jail-paths';
import { selfCheckLines } from './sandbox/self-check';
import { mark } from './timing';

async function main(): Promise<number> {
  mark('inner: modules loaded');
  const stderr = (s: string) => {
    process.stderr.write(s);
  };
  let spec: InnerSpec;
  try {
    spec = JSON.parse(readFileSync(join(JAIL_GATEWAY_DIR, INNER_SPEC_FILE), 'utf8')) as InnerSpec;
    if (spec.version !== 1) throw new Error(`unknown spec version ${String(spec.version)}`);
  } catch (e) {
    stderr(`ktl (in the sandbox): cannot read the build spec: ${(e as Error).message}\n`);
    return SANDBOX_FAILED_EXIT;
  }
  if (spec.logs) for (const l of selfCheckLines(process.env, spec.bound)) stderr(`${l}\n`);
  const stray = unboundOutputs(outputPaths(spec.options), spec.writable);
  if (stray.length > 0) {
    stderr(
      `ERROR: ${stray.join(', ')}: not bound writable into the sandbox (a ktl bug: the outer ktl plans these binds); refusing to write where the result would vanish\n`,
    );
    return SANDBOX_FAILED_EXIT;
  }
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(ExitCode.INTERRUPTED);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  mark('inner: spec read');
  const out = await runBuild(spec.options, {
    stdout: (s) => process.stdout.write(s),
    stderr,
    stdin: process.stdin,
    env: process.env,
    // stderr is the outer ktl's (inherited), so the jail sees the same terminal.
    terminalSize: () => ({ columns: process.stderr.columns, rows: process.stderr.rows }),
    signal: controller.signal,
  });
  mark('inner: build done');
  return out.exitCode;
}

main().then(async (code) => {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (s) =>
        new Promise<void>((resolve) =>
          s.writableLength === 0 ? resolve() : s.write('', () => resolve()),
        ),
    ),
  );
  process.exit(code);
});
