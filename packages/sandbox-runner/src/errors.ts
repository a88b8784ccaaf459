/**
 * The one error type of the runner. A failed run rejects with a SandboxError that carries the
 * same fields as a result, so callers handle success and failure with one shape; anything
 * thrown from elsewhere (an AbortError, a PolicyError, a spawn error) goes through `from()`.
 */
import { PolicyError } from '@ktl/nsjail-config';

const BRAND = Symbol.for('@ktl/sandbox-runner/SandboxError');

export type SandboxErrorCode =
  | 'E_EXIT' // the command exited non-zero
  | 'E_SIGNAL' // the command was killed by a signal
  | 'E_TIMEOUT' // the `timeout` option or the policy's time_limit ran out
  | 'E_CANCELED' // cancelSignal was aborted
  | 'E_RUNTIME_FAILED' // nsjail/bwrap (or a wrapper) failed before the command started
  | 'E_NO_RUNTIME' // neither nsjail nor bwrap can be found
  | 'E_UNENFORCEABLE' // the chosen runtime cannot enforce a policy field
  | 'E_BAD_OPTION' // an option of run()/plan() is invalid
  | 'E_POLICY' // the policy cannot be read or nsjail would refuse it
  | 'E_INTERNAL';

export type RuntimeName = 'nsjail' | 'bwrap';

/** What is known about a run when it ends, successfully or not. */
export interface RunOutcome {
  /** The command line as given to run(), for messages. */
  readonly command: string;
  /** Exit status; 128+N when the command was killed by signal N (as nsjail and bwrap report). */
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  readonly timedOut: boolean;
  readonly isCanceled: boolean;
  readonly failed: boolean;
  readonly durationMs: number;
  readonly runtime: RuntimeName | undefined;
  readonly stdout?: string;
  readonly stderr?: string;
  /** The runtime's own log lines (and the runner's notes), each `[sandbox] ...`. */
  readonly runtimeLog: readonly string[];
}

export interface SandboxErrorOptions {
  code: SandboxErrorCode;
  cause?: unknown;
  hint?: string | undefined;
  outcome?: Partial<RunOutcome> | undefined;
  /** Lines appended to the message (runtime log on failure). */
  details?: readonly string[] | undefined;
}

export class SandboxError extends Error implements RunOutcome {
  readonly code: SandboxErrorCode;
  /** Why, without command, hint or log: `exited 7`, `killed by SIGSYS`, ... */
  readonly shortMessage: string;
  readonly hint: string | undefined;
  readonly command: string;
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  readonly timedOut: boolean;
  readonly isCanceled: boolean;
  readonly failed = true;
  readonly durationMs: number;
  readonly runtime: RuntimeName | undefined;
  readonly stdout?: string;
  readonly stderr?: string;
  readonly runtimeLog: readonly string[];
  readonly [BRAND] = true;

  constructor(shortMessage: string, opts: SandboxErrorOptions) {
    super(render(shortMessage, opts), opts.cause === undefined ? {} : { cause: opts.cause });
    this.name = 'SandboxError';
    this.code = opts.code;
    this.shortMessage = shortMessage;
    this.hint = opts.hint;
    const o = opts.outcome ?? {};
    this.command = o.command ?? '';
    this.exitCode = o.exitCode;
    this.signal = o.signal;
    this.timedOut = o.timedOut ?? false;
    this.isCanceled = o.isCanceled ?? false;
    this.durationMs = o.durationMs ?? 0;
    this.runtime = o.runtime;
    if (o.stdout !== undefined) this.stdout = o.stdout;
    if (o.stderr !== undefined) this.stderr = o.stderr;
    this.runtimeLog = o.runtimeLog ?? [];
  }

  static is(value: unknown): value is SandboxError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[BRAND] === true
    );
  }

  /** Turns anything thrown into a SandboxError: AbortError -> E_CANCELED, PolicyError -> E_POLICY. */
  static from(value: unknown): SandboxError {
    if (SandboxError.is(value)) return value;
    if (PolicyError.is(value)) {
      return new SandboxError(`policy error: ${value.message}`, { code: 'E_POLICY', cause: value });
    }
    if (value instanceof Error && value.name === 'AbortError') {
      return new SandboxError('canceled', {
        code: 'E_CANCELED',
        cause: value,
        outcome: { isCanceled: true },
      });
    }
    const message = value instanceof Error ? value.message : String(value);
    return new SandboxError(`internal error: ${message}`, { code: 'E_INTERNAL', cause: value });
  }
}

function render(short: string, opts: SandboxErrorOptions): string {
  const lines = [short];
  const o = opts.outcome;
  if (o?.command) lines.push(`  command: ${o.command}${o.runtime ? ` (under ${o.runtime})` : ''}`);
  if (opts.hint) lines.push(`  hint: ${opts.hint}`);
  for (const d of opts.details ?? []) lines.push(d);
  return lines.join('\n');
}

/** `E_BAD_OPTION` naming the option and the value it got. */
export function badOption(option: string, value: unknown, expected: string): SandboxError {
  return new SandboxError(
    `invalid option ${option}: ${describeValue(value)} (expected ${expected})`,
    {
      code: 'E_BAD_OPTION',
    },
  );
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return 'an object';
  }
}
