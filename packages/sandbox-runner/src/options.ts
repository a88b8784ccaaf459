/**
 * Options of run() and plan(), checked eagerly: a bad option is an E_BAD_OPTION naming the
 * option and the value before anything is spawned or written.
 */
import { fstatSync } from 'node:fs';
import { constants } from 'node:os';
import { isAbsolute } from 'node:path';
import type { Bind, NsJailConfig } from '@ktl/nsjail-config';
import { isKnownFieldPath } from './bwrap-support';
import { badOption, describeValue, SandboxError } from './errors';

/**
 * - `pipe`: readable/writable on the handle, and (stdout/stderr) collected into the result.
 * - `stream`: on the handle only, never collected (for large outputs).
 * - `inherit`: the caller's own descriptor.
 * - `ignore`: /dev/null for the command.
 */
export type StdioMode = 'pipe' | 'stream' | 'inherit' | 'ignore';
export type RuntimeChoice = 'auto' | 'nsjail' | 'bwrap';
export type LogsMode = 'on-failure' | 'stream' | 'off';

/**
 * A bind mount, optionally pinned: `fd` is a descriptor open in the calling process on the
 * source (O_PATH is enough), so what is mounted is what the caller opened and checked, even if
 * `src` is swapped for a link meanwhile. bubblewrap mounts the descriptor itself
 * (`--bind-fd`/`--ro-bind-fd`, checking the result against it). nsjail cannot mount a
 * descriptor opened in another mount namespace (EINVAL), so there the source is the
 * descriptor's current path (read from /proc/self/fd when planning); a caller that must be sure
 * verifies the mount inside (device and inode).
 */
export interface RunBind extends Bind {
  fd?: number;
}

export interface RunOptions {
  /**
   * A parsed policy (from parsePolicy or built in code). At most one of policy/policyFile;
   * neither: the embedded default policy (defaultPolicy()).
   */
  policy?: NsJailConfig;
  /** Path of a policy file (text or ProtoJSON), read synchronously before spawning. */
  policyFile?: string;
  /** `auto` (the default): nsjail when found, else bubblewrap; never unjailed. */
  runtime?: RuntimeChoice;
  /** Bind mounts added after the policy's own (later mounts cover earlier ones). */
  binds?: readonly RunBind[];
  /** Environment entries added to the policy's envar (replacing the same names). */
  env?: Readonly<Record<string, string>>;
  /** Working directory inside the jail; replaces the policy's cwd. */
  cwd?: string;
  /** All three descriptors, or [stdin, stdout, stderr]; stdin/stdout/stderr override it. */
  stdio?: StdioMode | readonly [StdioMode, StdioMode, StdioMode];
  stdin?: StdioMode;
  stdout?: StdioMode;
  stderr?: StdioMode;
  /** Written to stdin, which is then closed (stdin must be `pipe`). */
  input?: string | Uint8Array;
  cancelSignal?: AbortSignal;
  /** Milliseconds before the jail is killed; 0 or unset: only the policy's time_limit. */
  timeout?: number;
  /** Sent first on timeout, cancel and kill() (default SIGTERM). */
  killSignal?: NodeJS.Signals | number;
  /** Grace before SIGKILL after killSignal, in ms (default 5000); false: never escalate. */
  forceKillAfterDelay?: number | false;
  /** Runtime log lines: kept and shown on failure (default), streamed as they come, or off. */
  logs?: LogsMode;
  /** Receives each `[sandbox] ...` line when logs is `stream` (default: process.stderr). */
  onLog?: (line: string) => void;
  /**
   * Policy fields the chosen runtime may leave unenforced (bubblewrap only): without this a
   * field it cannot enforce is an E_UNENFORCEABLE error. Names are schema fields
   * (`seccomp_string`) or mount/idmap subfields (`mount.noexec`).
   */
  allowUnenforced?: readonly string[];
  /**
   * false: resolve with the result (a SandboxError, failed: true) when the command fails,
   * times out, is canceled or the runtime fails. Configuration errors found before spawning
   * (E_BAD_OPTION, E_POLICY, E_NO_RUNTIME, E_UNENFORCEABLE) always reject: nothing ran.
   */
  reject?: boolean;
}

export interface NormalizedOptions {
  runtime: RuntimeChoice;
  binds: readonly RunBind[];
  env: Readonly<Record<string, string>>;
  cwd: string | undefined;
  stdio: readonly [StdioMode, StdioMode, StdioMode];
  input: Uint8Array | undefined;
  cancelSignal: AbortSignal | undefined;
  timeout: number;
  killSignal: NodeJS.Signals;
  forceKillAfterDelay: number | false;
  logs: LogsMode;
  onLog: ((line: string) => void) | undefined;
  allowUnenforced: ReadonlySet<string>;
  reject: boolean;
}

const KNOWN = new Set([
  'policy',
  'policyFile',
  'runtime',
  'binds',
  'env',
  'cwd',
  'stdio',
  'stdin',
  'stdout',
  'stderr',
  'input',
  'cancelSignal',
  'timeout',
  'killSignal',
  'forceKillAfterDelay',
  'logs',
  'onLog',
  'allowUnenforced',
  'reject',
]);
const STDIO: readonly StdioMode[] = ['pipe', 'stream', 'inherit', 'ignore'];
const SIGNALS = constants.signals as Record<string, number>;

function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[], def: T): T {
  if (v === undefined) return def;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw badOption(name, v, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
}

function ms(name: string, v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || !Number.isInteger(v)) {
    throw badOption(name, v, 'a whole number of milliseconds >= 0');
  }
  return v;
}

export function signalName(name: string, v: unknown): NodeJS.Signals {
  if (typeof v === 'string' && SIGNALS[v] !== undefined) return v as NodeJS.Signals;
  if (typeof v === 'number') {
    const found = Object.entries(SIGNALS).find(([, n]) => n === v);
    if (found) return found[0] as NodeJS.Signals;
  }
  throw badOption(name, v, 'a signal name like "SIGTERM" or its number');
}

function absPath(name: string, v: unknown): string {
  if (typeof v !== 'string' || !isAbsolute(v) || v.includes('\0')) {
    throw badOption(name, v, 'an absolute path');
  }
  return v;
}

function stdioModes(o: RunOptions): [StdioMode, StdioMode, StdioMode] {
  let all: [StdioMode, StdioMode, StdioMode] = ['pipe', 'pipe', 'pipe'];
  if (Array.isArray(o.stdio)) {
    if (o.stdio.length !== 3) throw badOption('stdio', o.stdio, '3 modes: [stdin, stdout, stderr]');
    all = o.stdio.map((m, i) => oneOf(`stdio[${i}]`, m, STDIO, 'pipe')) as typeof all;
  } else if (o.stdio !== undefined) {
    const m = oneOf('stdio', o.stdio, STDIO, 'pipe');
    all = [m, m, m];
  }
  return [
    oneOf('stdin', o.stdin, STDIO, all[0]),
    oneOf('stdout', o.stdout, STDIO, all[1]),
    oneOf('stderr', o.stderr, STDIO, all[2]),
  ];
}

function binds(v: unknown): RunBind[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw badOption('binds', v, 'an array of {src, dst, readonly}');
  return v.map((b: unknown, i) => {
    if (typeof b !== 'object' || b === null) {
      throw badOption(`binds[${i}]`, b, '{src, dst, readonly}');
    }
    const r = b as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!['src', 'dst', 'readonly', 'mandatory', 'fd'].includes(k)) {
        throw badOption(
          `binds[${i}].${k}`,
          r[k],
          'no such key (src, dst, readonly, mandatory, fd)',
        );
      }
    }
    const out: RunBind = {
      src: absPath(`binds[${i}].src`, r.src),
      dst: absPath(`binds[${i}].dst`, r.dst),
    };
    for (const k of ['readonly', 'mandatory'] as const) {
      if (r[k] !== undefined && typeof r[k] !== 'boolean') {
        throw badOption(`binds[${i}].${k}`, r[k], 'true or false');
      }
      if (r[k] !== undefined) out[k] = r[k] as boolean;
    }
    if (r.fd !== undefined) {
      if (typeof r.fd !== 'number' || !Number.isInteger(r.fd) || r.fd < 0)
        throw badOption(`binds[${i}].fd`, r.fd, 'an open descriptor number');
      try {
        fstatSync(r.fd);
      } catch {
        throw badOption(`binds[${i}].fd`, r.fd, 'an open descriptor (this one is not open)');
      }
      out.fd = r.fd;
    }
    return out;
  });
}

function env(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw badOption('env', v, 'an object of string values');
  }
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (k === '' || k.includes('=') || k.includes('\0')) {
      throw badOption('env', k, 'variable names without "=" or NUL');
    }
    if (typeof val !== 'string' || val.includes('\0')) {
      throw badOption(`env.${k}`, val, 'a string without NUL');
    }
    out[k] = val;
  }
  return out;
}

export function normalizeOptions(o: RunOptions): NormalizedOptions {
  if (o === null || typeof o !== 'object') {
    throw badOption('options', o, 'an object of run options');
  }
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw badOption(k, (o as Record<string, unknown>)[k], 'no such option');
  }
  if (o.policy !== undefined && o.policyFile !== undefined) {
    throw new SandboxError('invalid options: both policy and policyFile are set', {
      code: 'E_BAD_OPTION',
      hint: 'pass one of policy (parsed) or policyFile (a path), or neither for the default policy',
    });
  }
  if (o.policy !== undefined && (typeof o.policy !== 'object' || o.policy === null)) {
    throw badOption('policy', o.policy, 'a parsed NsJailConfig object');
  }
  if (o.policyFile !== undefined && (typeof o.policyFile !== 'string' || o.policyFile === '')) {
    throw badOption('policyFile', o.policyFile, 'a path');
  }
  const stdio = stdioModes(o);
  let input: Uint8Array | undefined;
  if (o.input !== undefined) {
    if (typeof o.input === 'string') input = Buffer.from(o.input);
    else if (o.input instanceof Uint8Array) input = o.input;
    else throw badOption('input', o.input, 'a string or Uint8Array');
    if (stdio[0] !== 'pipe') throw badOption('stdin', stdio[0], "'pipe' when input is set");
  }
  if (o.cancelSignal !== undefined && !(o.cancelSignal instanceof AbortSignal)) {
    throw badOption('cancelSignal', o.cancelSignal, 'an AbortSignal');
  }
  const fk = o.forceKillAfterDelay;
  if (o.onLog !== undefined && typeof o.onLog !== 'function') {
    throw badOption('onLog', o.onLog, 'a function');
  }
  if (o.reject !== undefined && typeof o.reject !== 'boolean') {
    throw badOption('reject', o.reject, 'true or false');
  }
  const allow = o.allowUnenforced ?? [];
  if (!Array.isArray(allow)) throw badOption('allowUnenforced', allow, 'an array of field names');
  for (const f of allow) {
    if (typeof f !== 'string' || !isKnownFieldPath(f)) {
      throw badOption('allowUnenforced', f, 'policy field names like "seccomp_string"');
    }
  }
  return {
    runtime: oneOf('runtime', o.runtime, ['auto', 'nsjail', 'bwrap'], 'auto'),
    binds: binds(o.binds),
    env: env(o.env),
    cwd: o.cwd === undefined ? undefined : absPath('cwd', o.cwd),
    stdio,
    input,
    cancelSignal: o.cancelSignal,
    timeout: ms('timeout', o.timeout, 0),
    killSignal: o.killSignal === undefined ? 'SIGTERM' : signalName('killSignal', o.killSignal),
    forceKillAfterDelay: fk === false ? false : ms('forceKillAfterDelay', fk, 5000),
    logs: oneOf('logs', o.logs, ['on-failure', 'stream', 'off'], 'on-failure'),
    onLog: o.onLog,
    allowUnenforced: new Set(allow),
    reject: o.reject ?? true,
  };
}

/** The command: an absolute path inside the jail (nsjail execs it without a PATH search). */
export function checkCommand(file: unknown, args: unknown): { file: string; args: string[] } {
  if (typeof file !== 'string' || !isAbsolute(file) || file.includes('\0')) {
    throw badOption('file', file, 'an absolute path inside the jail (nsjail does no PATH search)');
  }
  const list = args ?? [];
  if (!Array.isArray(list)) throw badOption('args', args, 'an array of strings');
  list.forEach((a, i) => {
    if (typeof a !== 'string' || a.includes('\0')) {
      throw badOption(`args[${i}]`, a, 'a string without NUL');
    }
  });
  return { file, args: list as string[] };
}

export function commandLine(file: string, args: readonly string[]): string {
  return [file, ...args]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

export { describeValue };
