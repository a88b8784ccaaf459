/**
 * File outputs of a sandboxed build (`-o type=tar|docker|oci,dest=FILE`): the jailed ktl writes
 * each into a private directory of this build, and the outer ktl moves it into place once the
 * build has succeeded, through the destination directory's descriptor pinned before the build.
 * So a tar's directory — often the context itself — is never writable inside the jail, and a
 * failed build leaves nothing at the destination.
 */
import { constants, copyFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { BuildOptions } from '../build/options';

export interface StagedOutput {
  /** Index in the options' outputs. */
  readonly index: number;
  /** Where the user asked for it. */
  readonly dest: string;
  /** Where the jailed ktl writes it (the same path outside: a directory bound read-write). */
  readonly staged: string;
  /** The destination's directory, pinned. */
  readonly dirFd: number;
}

/** The options the jailed ktl serves: each file output written to its staged path instead. */
export function withStagedOutputs(o: BuildOptions, staged: readonly StagedOutput[]): BuildOptions {
  if (staged.length === 0) return o;
  const outputs = o.outputs.map((x, i) => {
    const s = staged.find((f) => f.index === i);
    return s && 'dest' in x ? { ...x, dest: s.staged } : x;
  });
  return { ...o, outputs };
}

/**
 * Moves each staged file to its destination: a rename within the filesystem, else a copy to a
 * temporary name beside it (O_EXCL: never through a link) renamed over the name. A link at the
 * name is replaced, never followed. Throws with the destination named.
 */
export function moveIntoPlace(staged: readonly StagedOutput[]): void {
  for (const s of staged) {
    const name = basename(s.dest);
    const target = `/proc/self/fd/${s.dirFd}/${name}`;
    try {
      try {
        renameSync(s.staged, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
        const tmp = join(`/proc/self/fd/${s.dirFd}`, `.${name}.ktl-partial-${process.pid}`);
        try {
          copyFileSync(s.staged, tmp, constants.COPYFILE_EXCL);
          renameSync(tmp, target);
        } catch (copyError) {
          rmSync(tmp, { force: true });
          throw copyError;
        }
      }
    } catch (e) {
      throw new Error(`cannot move the output into place at ${s.dest}: ${(e as Error).message}`);
    }
  }
}
