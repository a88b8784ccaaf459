/**
 * The `tty` progress format, like buildx's: a frame redrawn in place on a terminal
 *
 *   [+] Building 3.2s (5/9)
 *    => [internal] load build definition from Dockerfile                  0.0s
 *    => => transferring dockerfile: 200B                                   0.0s
 *    => CACHED [1/3] FROM 127.0.0.1:5000/ktl/busybox:latest                0.0s
 *    => [2/3] RUN make                                                     1.2s
 *    => => # compiling foo.c                (a running step's last log lines)
 *    => ERROR [3/3] RUN false                                              0.1s
 *
 * Redrawn at most every 100 ms (and when the build ends), with cursor-up and erase-line; only
 * lines that changed are rewritten and an unchanged frame writes nothing. Lines are cut to
 * the terminal's width, and the frame is kept shorter than the terminal so the cursor can
 * always get back to its top (finished steps make room first). The last frame stays.
 *
 * Text from the build (log lines, step names, statuses) is sanitized: escape sequences and
 * control characters are removed, so a RUN step cannot move the cursor or rewrite the screen.
 */
import type { StatusResponse, VertexStatus } from '../gen/moby/buildkit/v1/control';
import {
  formatWarnings,
  PlainRenderer,
  type ProgressRenderer,
  QuietRenderer,
  statusBytes,
} from './plain';
import { ProgressTracker, type StepState, secondsSince } from './tracker';

/** How many of a running step's last log lines the frame shows. */
export const TTY_LOG_LINES = 6;

export interface TtyOptions {
  /** The terminal's width now (COLUMNS or the tty's); 80 when unknown. */
  readonly columns?: (() => number | undefined) | undefined;
  /** The terminal's height now; 24 when unknown. */
  readonly rows?: (() => number | undefined) | undefined;
  /** Colors (SGR); off for NO_COLOR. Cursor movement is used either way. */
  readonly color?: boolean | undefined;
  /** Milliseconds, for elapsed times (tests). */
  readonly now?: (() => number) | undefined;
  /** Minimum time between frames, in ms. */
  readonly intervalMs?: number | undefined;
  /** Redraw on a timer, so elapsed times move with no news from the builder (off in tests). */
  readonly timer?: boolean | undefined;
}

const ESCAPES =
  /\x1b(\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(\x07|\x1b\\)?|[PX^_][^\x1b]*(\x1b\\)?|[ -/]*[0-~]?)/g;
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/**
 * One line of build output as it may be shown: what a terminal would leave visible after
 * carriage returns (progress bars), without escape sequences or control characters, tabs
 * expanded to spaces.
 */
export function sanitizeLine(text: string): string {
  const parts = text.split('\r');
  const last = [...parts].reverse().find((p) => p !== '') ?? '';
  const clean = last.replace(ESCAPES, '').replace(CONTROLS, '');
  let out = '';
  for (const ch of clean) out += ch === '\t' ? ' '.repeat(8 - (width(out) % 8)) : ch;
  return out;
}

/** Sanitizes every line of a block of text (the failure report, shown on the terminal). */
export function sanitizeText(text: string): string {
  return text
    .split('\n')
    .map((l) => sanitizeLine(l))
    .join('\n');
}

function charWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || cp === 0xfe0f) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Columns a (sanitized) string takes on a terminal. */
export function width(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch.codePointAt(0) ?? 0);
  return w;
}

/** The longest prefix of s that fits in n columns. */
export function fit(s: string, n: number): string {
  let out = '';
  let w = 0;
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0) ?? 0);
    if (w + cw > n) break;
    out += ch;
    w += cw;
  }
  return out;
}

/** left, and right aligned to the last column; left is cut to leave right its room. */
function aligned(left: string, right: string, cols: number): string {
  if (right === '') return fit(left, cols);
  const room = cols - width(right) - 1;
  if (room < 8) return fit(left, cols);
  const l = fit(left, room);
  return `${l}${' '.repeat(cols - width(l) - width(right))}${right}`;
}

const SGR = { blue: '\x1b[34m', red: '\x1b[31m', yellow: '\x1b[33m', dim: '\x1b[2m' };
type Color = keyof typeof SGR | undefined;

interface Line {
  readonly text: string;
  /** A time, aligned to the last column. */
  readonly right?: string;
  readonly color: Color;
}

interface Block {
  readonly lines: Line[];
  readonly done: boolean;
}

export class TtyRenderer implements ProgressRenderer {
  readonly tracker = new ProgressTracker();
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly color: boolean;
  private readonly t0: number;
  /** Local clock minus the builder's, from the first started step (as buildx does). */
  private clockOffset: number | undefined;
  /** Each step's last log lines (sanitized) and its sub-task statuses, by ID. */
  private readonly logs = new Map<string, string[]>();
  private readonly statuses = new Map<string, Map<string, VertexStatus>>();
  /** The lines on screen, as written (with colors). */
  private shown: string[] = [];
  private lastDraw = Number.NEGATIVE_INFINITY;
  private ended = false;
  private readonly ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly write: (text: string) => void,
    private readonly opts: TtyOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 100;
    this.color = opts.color ?? true;
    this.t0 = this.now();
    if (opts.timer ?? true) {
      this.ticker = setInterval(() => this.draw(false), this.intervalMs);
      this.ticker.unref?.();
    }
  }

  update(s: StatusResponse): void {
    for (const digest of this.tracker.apply(s)) {
      const step = this.tracker.steps.get(digest);
      if (step) this.collect(step);
    }
    if (this.now() - this.lastDraw >= this.intervalMs) this.draw(false);
  }

  /** Draws the frame now if it changed (the timer calls this too). */
  refresh(): void {
    this.draw(false);
  }

  end(): void {
    if (this.ended) return;
    if (this.ticker) clearInterval(this.ticker);
    this.draw(true);
    this.ended = true;
    const ws = formatWarnings(this.tracker.warnings);
    if (ws !== '') this.write(this.paint(sanitizeText(ws.replace(/\n$/, '')), 'yellow') + '\n');
  }

  private collect(step: StepState): void {
    if (step.started && this.clockOffset === undefined) {
      this.clockOffset = this.now() - step.started.getTime();
    }
    if (step.started) this.tracker.number(step); // `#N` for the failure report, as in plain
    const kept = this.logs.get(step.digest) ?? [];
    for (const l of step.pendingLogs.splice(0)) kept.push(sanitizeLine(l.text));
    kept.splice(0, Math.max(0, kept.length - TTY_LOG_LINES));
    this.logs.set(step.digest, kept);
    const sts = this.statuses.get(step.digest) ?? new Map<string, VertexStatus>();
    for (const [id, st] of step.changedStatuses) sts.set(id, st);
    step.changedStatuses.clear();
    this.statuses.set(step.digest, sts);
    step.warnings.splice(0); // listed at the end with the others
  }

  /** Seconds since `from` (a builder timestamp) on the local clock. */
  private since(from: Date): number {
    const at = this.now() - (this.clockOffset ?? 0);
    return Math.max(0, (at - from.getTime()) / 1000);
  }

  private block(step: StepState): Block {
    const canceled = step.error.endsWith('context canceled');
    const state =
      step.error !== '' ? (canceled ? 'CANCELED ' : 'ERROR ') : step.cached ? 'CACHED ' : '';
    const done = step.completed !== undefined || step.cached || step.error !== '';
    const dt = step.completed
      ? secondsSince(step.started, step.completed)
      : step.started && !done
        ? this.since(step.started)
        : 0;
    const color: Color =
      step.error !== '' ? (canceled ? 'yellow' : 'red') : done ? 'blue' : undefined;
    const lines: Line[] = [
      { text: ` => ${state}${sanitizeLine(step.name)}`, right: `${dt.toFixed(1)}s`, color },
    ];
    for (const st of this.statuses.get(step.digest)?.values() ?? []) {
      lines.push({ ...this.statusText(st), color });
    }
    if (!done) {
      const logs = [...(this.logs.get(step.digest) ?? [])];
      for (const p of step.partial.values()) logs.push(sanitizeLine(p.text));
      for (const l of logs.slice(-TTY_LOG_LINES))
        lines.push({ text: ` => => # ${l}`, color: 'dim' });
    }
    return { lines, done };
  }

  private statusText(s: VertexStatus): { text: string; right: string } {
    const bytes = statusBytes(s);
    const dt = s.started
      ? s.completed
        ? secondsSince(s.started, s.completed)
        : this.since(s.started)
      : 0;
    return { text: ` => => ${sanitizeLine(s.ID)}${bytes}`, right: `${dt.toFixed(1)}s` };
  }

  /** The frame's lines, not yet cut to the width. */
  private frame(final: boolean): Line[] {
    const steps = [...this.tracker.steps.values()];
    const doneCount = steps.filter((s) => s.completed !== undefined || s.cached).length;
    const elapsed = ((this.now() - this.t0) / 1000).toFixed(1);
    const header: Line = {
      text: `[+] Building ${elapsed}s (${doneCount}/${steps.length})${final ? ' FINISHED' : ''}`,
      color: undefined,
    };
    // In the order the steps started (the stream sends the whole graph up front).
    const blocks = steps
      .filter((s) => s.started !== undefined || s.cached)
      .sort((a, b) => (a.started?.getTime() ?? 0) - (b.started?.getTime() ?? 0))
      .map((s) => this.block(s));
    let lines = blocks.flatMap((b) => b.lines);
    // While redrawing, the frame must fit the terminal: finished steps go first, then the top.
    const max = Math.max(2, (this.opts.rows?.() || 24) - 1) - 1;
    if (!final && lines.length > max) {
      let excess = lines.length - max;
      const kept = blocks.filter((b) => {
        if (excess <= 0 || !b.done) return true;
        excess -= b.lines.length;
        return false;
      });
      lines = kept.flatMap((b) => b.lines).slice(-max);
    }
    return [header, ...lines];
  }

  private paint(text: string, color: Color): string {
    return this.color && color && text !== '' ? `${SGR[color]}${text}\x1b[0m` : text;
  }

  private draw(final: boolean): void {
    if (this.ended) return;
    const cols = Math.max(20, this.opts.columns?.() || 80) - 1;
    const next = this.frame(final).map(({ text, right, color }) =>
      this.paint(aligned(text, right ?? '', cols), color),
    );
    this.lastDraw = this.now();
    const prev = this.shown;
    if (next.length === prev.length && next.every((l, i) => l === prev[i])) return;
    let out = prev.length > 0 ? `\r\x1b[${prev.length}A` : '';
    let down = 0;
    const moveDown = () => {
      if (down > 0) out += `\x1b[${down}B`;
      down = 0;
    };
    for (const [i, line] of next.entries()) {
      if (line === prev[i]) {
        down++;
        continue;
      }
      moveDown();
      out += `${line}\x1b[K\n`;
    }
    moveDown();
    const extra = prev.length - next.length;
    if (extra > 0) {
      out += '\x1b[K\n'.repeat(extra);
      out += `\x1b[${extra}A`;
    }
    this.shown = next;
    this.write(out);
  }
}

export type ProgressMode = 'plain' | 'quiet' | 'tty';

export function createRenderer(
  mode: ProgressMode,
  write: (text: string) => void,
  tty: TtyOptions = {},
): ProgressRenderer {
  return mode === 'quiet'
    ? new QuietRenderer()
    : mode === 'tty'
      ? new TtyRenderer(write, tty)
      : new PlainRenderer(write);
}
