/**
 * Build step only (dist/boot.cjs --write-code-cache): runs what a sandboxed `ktl build` runs
 * before its jail starts (reading argv, options, the embedded policies, the bind plan, the
 * runtime's argv) once, without side effects, so that the code cache holds those functions
 * compiled too. Best effort: a machine without bubblewrap still gets a cache, only a colder one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plan } from '@ktl/sandbox-runner';
import { commandLineKey, readBuildArgv } from '../build/argv';
import { type BuildFlags, optionsFromFlags, sandboxSettingsFromFlags } from '../build/from-flags';
import { planBuildBinds } from './binds';
import { loadSandboxPolicy } from './policy';

export async function warmSandboxStart(): Promise<void> {
  const cwd = mkdtempSync(join(tmpdir(), 'ktl-warm-'));
  try {
    writeFileSync(join(cwd, 'Dockerfile'), 'FROM scratch\n');
    const read = readBuildArgv(['.', '-t', 'warm:up', '-o', 'type=local,dest=out']);
    if (!read) throw new Error('warm-up: the early argv reader declined its own example');
    commandLineKey(read.args, read.flags);
    const flags = read.flags as BuildFlags;
    sandboxSettingsFromFlags(flags, {});
    const options = optionsFromFlags(read.args.context, flags, {
      cwd,
      env: {},
      stderrIsTTY: false,
    });
    const { binds } = planBuildBinds(options, [], cwd);
    for (const hermetic of [false, true]) {
      const { policy } = await loadSandboxPolicy(undefined, hermetic);
      try {
        plan(process.execPath, ['-e', '0'], {
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
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}
