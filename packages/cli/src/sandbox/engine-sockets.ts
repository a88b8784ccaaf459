/**
 * The engine and builder sockets ktl knows of on this host. None of them may be reachable in
 * the jail: a process that can connect to a rootful engine's API owns the host. They are
 * masked wherever a bound directory holds them, refused as an `--ssh` agent (compared by
 * device and inode, so a link or a second name does not hide one), and checked for by the
 * jailed ktl (--sandbox-logs).
 *
 * No dependency on @ktl/buildkit-client: the jail's early start loads this.
 */
import { realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface EngineSocket {
  /** Where it was looked for (as configured). */
  readonly path: string;
  /** Its real path on the host. */
  readonly real: string;
  readonly dev: bigint;
  readonly ino: bigint;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The unix socket path of an address (`unix://P`, `docker://unix://P`), else undefined. */
export function unixSocketOf(address: string | undefined): string | undefined {
  const a = address?.trim().replace(/^docker:\/\//, '');
  return a?.startsWith('unix://') ? a.slice('unix://'.length) : undefined;
}

/** ktl's state directory: $KTL_STATE_DIR, else $XDG_STATE_HOME/ktl, else ~/.local/state/ktl. */
export function ktlStateDir(env: Env): string {
  return (
    env.KTL_STATE_DIR ||
    join(env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state'), 'ktl')
  );
}

/** The managed builder's directory (src/builder/managed.ts: its socket and its engine's). */
export function managedBuilderDir(env: Env): string {
  return join(ktlStateDir(env), 'builder');
}

/** Every socket path ktl knows an engine or builder may listen on, existing or not. */
export function engineSocketPaths(env: Env, builder?: string): string[] {
  const uid = process.getuid?.();
  const runtime = env.XDG_RUNTIME_DIR || (uid !== undefined ? `/run/user/${uid}` : undefined);
  const paths = [
    unixSocketOf(builder),
    unixSocketOf(env.BUILDKIT_HOST),
    unixSocketOf(env.DOCKER_HOST),
    '/var/run/docker.sock',
    '/run/docker.sock',
    '/run/containerd/containerd.sock',
    '/run/buildkit/buildkitd.sock',
    runtime && join(runtime, 'docker.sock'),
    runtime && join(runtime, 'buildkit', 'buildkitd.sock'),
    runtime && join(runtime, 'containerd', 'containerd.sock'),
    join(managedBuilderDir(env), 'engine.sock'),
  ];
  return [...new Set(paths.filter((p): p is string => Boolean(p)))];
}

/** The known sockets that exist, with their identity. */
export function engineSockets(env: Env, builder?: string): EngineSocket[] {
  const out: EngineSocket[] = [];
  const seen = new Set<string>();
  for (const path of engineSocketPaths(env, builder)) {
    try {
      const st = statSync(path, { bigint: true });
      if (!st.isSocket()) continue;
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ path, real: realpathSync(path), dev: st.dev, ino: st.ino });
    } catch {
      // Not there: nothing to hide.
    }
  }
  return out;
}
