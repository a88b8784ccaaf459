/**
 * One build on a builder, on this side of the sandbox (the host with KTL_SANDBOX_DISABLE=1,
 * or the jailed ktl). The sandbox wrapper calls the same code inside the jail.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { BuildkitError, connect, type ExportSpec, solveDockerfile } from '@ktl/buildkit-client';
import { BuildUsageError, keyValues, normalizeImageName, parseOutput } from './options';
import { plainProgress } from './progress';

export const EXIT = { ok: 0, buildFailed: 1, usage: 2, noBuilder: 3, canceled: 130 } as const;

export interface BuildFlags {
  context: string;
  file?: string | undefined;
  tag?: string[] | undefined;
  buildArg?: string[] | undefined;
  label?: string[] | undefined;
  target?: string | undefined;
  noCache?: boolean | undefined;
  output?: string[] | undefined;
  progress?: string | undefined;
  builder?: string | undefined;
  network?: string | undefined;
  hermetic?: boolean | undefined;
  push?: boolean | undefined;
}

export async function runBuild(
  f: BuildFlags,
  cwd: string,
  stderr: (s: string) => void,
  signal?: AbortSignal,
): Promise<number> {
  const contextDir = resolve(cwd, f.context);
  if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) {
    stderr(`ktl build: context ${contextDir} is not a directory\n`);
    return EXIT.usage;
  }
  let exports: ExportSpec[];
  let buildArgs: Record<string, string>;
  let labels: Record<string, string>;
  try {
    exports = (f.output ?? []).map((o) => parseOutput(o, cwd));
    buildArgs = keyValues('--build-arg', f.buildArg);
    labels = keyValues('--label', f.label);
  } catch (e) {
    if (e instanceof BuildUsageError) {
      stderr(`ktl build: ${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  }
  if (f.tag?.length) {
    const names = f.tag.map(normalizeImageName).join(',');
    exports.push({ type: 'image', attrs: { name: names, ...(f.push ? { push: 'true' } : {}) } });
  }
  const frontendAttrs: Record<string, string> = {};
  if (f.hermetic || f.network === 'none') frontendAttrs['force-network-mode'] = 'none';
  else if (f.network === 'host') frontendAttrs['force-network-mode'] = 'host';

  let conn: Awaited<ReturnType<typeof connect>>;
  try {
    conn = await connect(
      f.builder ?? (process.env.KTL_IN_SANDBOX === '1' ? process.env.BUILDKIT_HOST : undefined),
    );
  } catch (e) {
    stderr(`ktl build: ${BuildkitError.from(e).message}\n`);
    return EXIT.noBuilder;
  }
  const progress = plainProgress((s) => {
    if (f.progress !== 'quiet') stderr(s);
  });
  try {
    const res = await solveDockerfile(conn, {
      contextDir,
      ...(f.file ? { dockerfile: resolve(cwd, f.file) } : {}),
      buildArgs,
      labels,
      ...(f.target ? { target: f.target } : {}),
      ...(f.noCache ? { noCache: true } : {}),
      frontendAttrs,
      exports,
      onStatus: progress.onStatus,
      ...(signal ? { signal } : {}),
    });
    const digest = res.exporterResponse['containerimage.digest'];
    if (digest && f.progress === 'quiet') process.stdout.write(`${digest}\n`);
    return EXIT.ok;
  } catch (e) {
    if (signal?.aborted) return EXIT.canceled;
    const err = BuildkitError.from(e);
    stderr(`ERROR: ${err.message}\n`);
    for (const failed of progress.failed()) stderr(`${failed}\n`);
    return EXIT.buildFailed;
  } finally {
    await conn.close();
  }
}
