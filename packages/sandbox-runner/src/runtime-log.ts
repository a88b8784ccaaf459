/**
 * The runtime's own words: nsjail's log (read from descriptor 3) and bwrap's status JSON and
 * stderr, turned into `[sandbox] ...` lines and into what happened to the command.
 */
import { constants } from 'node:os';
import type { LogsMode } from './options';

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([k, v]) => [v, k as NodeJS.Signals]),
);

export function signalByNumber(n: number): NodeJS.Signals | undefined {
  return SIGNAL_NAMES.get(n);
}

/** Collects runtime log lines; `stream` hands each one out as it arrives. */
export class RuntimeLog {
  /** Every line, shown or not, for classification. */
  readonly all: string[] = [];
  /** Lines the caller sees, each `[sandbox] ...`. */
  readonly shown: string[] = [];
  private partial = '';

  constructor(
    private readonly mode: LogsMode,
    private readonly onLog: ((line: string) => void) | undefined,
    private readonly minLevel = 'D',
  ) {}

  /** A line from the runner itself. */
  note(text: string): void {
    this.show(text);
  }

  /** Raw bytes of nsjail's log; lines may be split across chunks. */
  write(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    for (const l of lines) this.line(l);
  }

  end(): void {
    if (this.partial !== '') this.line(this.partial);
    this.partial = '';
  }

  line(raw: string): void {
    this.all.push(raw);
    const level = /^\[([DIWEF])\]/.exec(raw)?.[1];
    if (level !== undefined && 'DIWEF'.indexOf(level) < 'DIWEF'.indexOf(this.minLevel)) return;
    // The timestamp is noise next to the runner's own timing; keep level, pid and function.
    this.show(raw.replace(/^(\[[DIWEF]\])\[\d{4}-[^\]]*\]/, '$1'));
  }

  private show(text: string): void {
    if (this.mode === 'off') return;
    const l = `[sandbox] ${text}`;
    this.shown.push(l);
    if (this.mode === 'stream') {
      if (this.onLog) this.onLog(l);
      else process.stderr.write(`${l}\n`);
    }
  }
}

export interface CommandStatus {
  /** The command was exec'd (a runtime failure happened otherwise). */
  readonly started: boolean;
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  /** nsjail killed it for running past time_limit. */
  readonly timeLimitHit: boolean;
  /** The runtime's error lines before the command ran (its own words). */
  readonly errors: readonly string[];
}

const NSJ_EXIT = /pid=\d+ \(.*?\) exited with status: (\d+)/;
const NSJ_SIGNAL = /pid=\d+ \(.*?\) terminated with signal: \S+ \((\d+)\)/;

/** Strips `[E][time][pid] fn():NNN ` so only nsjail's message remains. */
function message(line: string): string {
  return line.replace(/^\[[DIWEF]\](\[[^\]]*\]){1,2}\s*(\S+\(\):\d+\s+)?/, '');
}

/** What nsjail's log says happened (subproc.cc: "exited with status", "terminated with signal"). */
export function nsjailStatus(lines: readonly string[]): CommandStatus {
  let exitCode: number | undefined;
  let signal: NodeJS.Signals | undefined;
  let ended = false;
  let timeLimitHit = false;
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const l of lines) {
    if (l.includes('run time >= time limit')) timeLimitHit = true;
    if (ended) continue;
    const e = NSJ_EXIT.exec(l);
    const s = NSJ_SIGNAL.exec(l);
    if (e) {
      exitCode = Number(e[1]);
      ended = true;
    } else if (s) {
      signal = signalByNumber(Number(s[1]));
      exitCode = 128 + Number(s[1]);
      ended = true;
    } else if (/^\[[EF]\]/.test(l)) errors.push(message(l));
    else if (/^\[W\]/.test(l) && !/logParams\(\)|Received error message/.test(l)) {
      warnings.push(message(l));
    }
  }
  const started = errors.length === 0 && lines.some((l) => l.includes('Executing '));
  // A failed mount says why in a warning just before the generic errors; keep both.
  return {
    started,
    exitCode,
    signal,
    timeLimitHit,
    errors: started ? [] : [...warnings, ...errors],
  };
}

/** bwrap reports a signal as 128+N like a shell; map it back when N is a signal. */
export function fromExitCode(code: number): { exitCode: number; signal?: NodeJS.Signals } {
  const sig = code > 128 ? signalByNumber(code - 128) : undefined;
  return sig ? { exitCode: code, signal: sig } : { exitCode: code };
}

/** Reads bwrap's --json-status-fd stream: child-pid first, exit-code once the command ran. */
export class BwrapStatus {
  childPid: number | undefined;
  exitCode: number | undefined;
  private partial = '';

  write(chunk: Buffer | string, onChildPid: (pid: number) => void): void {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop()!;
    for (const l of lines) this.parse(l, onChildPid);
  }

  end(onChildPid: (pid: number) => void): void {
    if (this.partial.trim() !== '') this.parse(this.partial, onChildPid);
    this.partial = '';
  }

  private parse(line: string, onChildPid: (pid: number) => void): void {
    if (line.trim() === '') return;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof v['child-pid'] === 'number') {
      this.childPid = v['child-pid'];
      onChildPid(this.childPid);
    }
    if (typeof v['exit-code'] === 'number') this.exitCode = v['exit-code'];
  }
}

/** Keeps the last bytes of a stream (bwrap's error message is at the end of its stderr). */
export class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max = 64 * 1024) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  lines(): string[] {
    return Buffer.concat(this.chunks)
      .toString()
      .split('\n')
      .filter((l) => l.trim() !== '');
  }
}
