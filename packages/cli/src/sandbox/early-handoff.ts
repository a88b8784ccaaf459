/**
 * Where the early start (src/early.ts, run before the CLI bundle loads) leaves the jail it
 * started, and how `ktl build` takes it: only for exactly the command line it was started for.
 * The two sides live in different bundles, so they meet on a global symbol.
 */
import type { BuildkitConnection, TlsFlags } from '@ktl/buildkit-client';
import type { Jail } from './jail';

const SLOT = Symbol.for('ktl.sandbox.early-jail');

export interface EarlyJail {
  /** commandLineKey() of the command line the jail was planned from. */
  readonly key: string;
  readonly jail: Jail;
  /** --builder as read early: the CLI starts finding the builder as soon as it is loaded. */
  readonly builder: string | undefined;
  /** Its TLS flags (--tlscacert, ...), as read early. */
  readonly builderTls: TlsFlags | undefined;
  /** --context, as read early. */
  readonly dockerContext: string | undefined;
  /** That search, once started (src/index.ts). */
  found?: Promise<BuildkitConnection>;
  /** Ctrl-C (or SIGTERM) came before the build took the jail: the build ends at once, 130. */
  interrupted: boolean;
  /** Hands the jail over: the early start's signal and exit handlers are removed. */
  release(): void;
}

type Slot = { [SLOT]?: EarlyJail | undefined };

export function leaveEarlyJail(e: EarlyJail): void {
  (globalThis as Slot)[SLOT] = e;
}

/** The early jail waiting to be taken, if any (to start finding its builder meanwhile). */
export function waitingEarlyJail(): EarlyJail | undefined {
  return (globalThis as Slot)[SLOT];
}

/**
 * The early jail when it was started for the command line `key`; otherwise (another reading of
 * the command line, or none started) it is discarded, and `discarded` settles when it is gone.
 * Synchronous when it matches, so the caller's signal handlers replace the early start's with
 * no gap.
 */
export function takeEarlyJail(key: string | undefined): {
  jail?: Jail;
  found?: Promise<BuildkitConnection> | undefined;
  discarded?: Promise<void>;
  interrupted?: boolean;
} {
  const slot = globalThis as Slot;
  const early = slot[SLOT];
  if (!early) return {};
  slot[SLOT] = undefined;
  early.release();
  if (key !== undefined && early.key === key && !early.interrupted)
    return { jail: early.jail, found: early.found };
  const closed = early.found?.then((c) => c.close()).catch(() => {});
  return {
    discarded: Promise.all([early.jail.discard(), closed]).then(() => {}),
    interrupted: early.interrupted,
  };
}
