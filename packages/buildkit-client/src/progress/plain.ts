/**
 * The `plain` progress format of buildx (BuildKit's progressui text printer), so logs of
 * ktl and `docker buildx build --progress=plain` read the same:
 *
 *   #5 [2/2] RUN make              a step's header when output switches to it
 *   #5 0.353 compiling             its log lines, seconds since the step started
 *   #5 transferring context: 42B done
 *   #5 DONE 0.4s | #5 CACHED | #5 ERROR: ...    then a blank line
 *   #5 ...                         output switched to another step before this one ended
 *
 * Sub-task statuses are printed once, when done (buildx also prints open ones on a timer,
 * which makes its output depend on timing). Steps never started are not shown.
 */
import type { StatusResponse, VertexStatus, VertexWarning } from '../gen/moby/buildkit/v1/control';
import { humanSize, ProgressTracker, type StepState, secondsSince } from './tracker';

export interface ProgressRenderer {
  readonly tracker: ProgressTracker;
  update(s: StatusResponse): void;
  /** Ends a pending line and prints the warning summary. */
  end(): void;
}

/** ` 1.2MB / 3.4MB`, ` 1.2MB`, or nothing: a status's progress as buildx shows it. */
export function statusBytes(s: VertexStatus): string {
  const cur = Number(s.current);
  const total = Number(s.total);
  return total !== 0
    ? ` ${humanSize(cur)} / ${humanSize(total)}`
    : cur !== 0
      ? ` ${humanSize(cur)}`
      : '';
}

function statusLine(s: VertexStatus): string {
  const bytes = statusBytes(s);
  const dt = s.started ? secondsSince(s.started, s.completed ?? s.timestamp) : 0;
  return `${s.ID}${bytes}${dt > 0.01 ? ` ${dt.toFixed(1)}s` : ''} done`;
}

function terminal(step: StepState): string | undefined {
  if (step.error !== '') {
    return step.error.endsWith('context canceled') ? 'CANCELED' : `ERROR: ${step.error}`;
  }
  if (step.cached) return 'CACHED';
  if (step.completed) return `DONE ${secondsSince(step.started, step.completed).toFixed(1)}s`;
  return undefined;
}

/** The warning summary printed after a build (`2 warnings found:` and one line each). */
export function formatWarnings(ws: readonly VertexWarning[]): string {
  if (ws.length === 0) return '';
  const out = [`${ws.length} warning${ws.length === 1 ? '' : 's'} found:`];
  for (const w of ws) {
    const line = w.ranges[0]?.start?.line;
    const where = w.info?.filename && line ? ` (${w.info.filename}:${line})` : '';
    out.push(` - ${Buffer.from(w.short).toString('utf8')}${where}`);
  }
  return `${out.join('\n')}\n`;
}

export class PlainRenderer implements ProgressRenderer {
  readonly tracker = new ProgressTracker();
  private current = '';
  /** What each step's last printed terminal line was, so a resent vertex is not repeated. */
  private readonly printedEnd = new Map<string, string>();
  /** Steps whose header is out and whose end is not yet printed. */
  private readonly shown = new Set<string>();

  constructor(private readonly write: (text: string) => void) {}

  update(s: StatusResponse): void {
    for (const d of this.tracker.apply(s)) this.print(d);
  }

  end(): void {
    if (this.current !== '') {
      const step = this.tracker.steps.get(this.current);
      if (step) {
        this.tracker.flushPartial(step);
        this.printLogs(step);
      }
      this.current = '';
    }
    this.write(formatWarnings(this.tracker.warnings));
  }

  private print(digest: string): void {
    const step = this.tracker.steps.get(digest);
    if (!step) return;
    const end = terminal(step);
    const newEnd = end !== undefined && this.printedEnd.get(digest) !== end;
    const hasOutput =
      step.pendingLogs.length > 0 ||
      step.partial.size > 0 ||
      [...step.changedStatuses.values()].some((s) => s.completed) ||
      step.warnings.length > 0;
    // A step that just started gets its header (as buildx does), once per run of it.
    const opened = step.started !== undefined && end === undefined && !this.shown.has(digest);
    if (!newEnd && !hasOutput && !opened) return;

    const n = this.tracker.number(step);
    if (this.current !== digest) {
      if (this.current !== '') {
        const old = this.tracker.steps.get(this.current);
        if (old) {
          this.tracker.flushPartial(old);
          this.printLogs(old);
          this.write(`#${old.index} ...\n\n`);
        }
      }
      this.write(`#${n} ${step.name}\n`);
      this.current = digest;
      this.shown.add(digest);
    }
    for (const s of step.changedStatuses.values()) {
      if (s.completed) this.write(`#${n} ${statusLine(s)}\n`);
    }
    for (const [id, s] of step.changedStatuses) if (s.completed) step.changedStatuses.delete(id);
    for (const w of step.warnings.splice(0)) {
      this.write(`#${n} WARN: ${Buffer.from(w.short).toString('utf8')}\n`);
    }
    if (end !== undefined) this.tracker.flushPartial(step);
    this.printLogs(step);
    if (newEnd && end !== undefined) {
      this.printedEnd.set(digest, end);
      this.shown.delete(digest);
      this.write(`#${n} ${end}\n\n`);
      this.current = '';
    } else if (end === undefined) {
      this.printedEnd.delete(digest);
    }
  }

  private printLogs(step: StepState): void {
    for (const l of step.pendingLogs.splice(0)) {
      this.write(`#${step.index} ${l.t.toFixed(3)} ${l.text}\n`);
    }
  }
}

/** `quiet`: nothing while building; the caller prints the result (the image id) or the error. */
export class QuietRenderer implements ProgressRenderer {
  readonly tracker = new ProgressTracker();
  update(s: StatusResponse): void {
    this.tracker.apply(s);
  }
  end(): void {}
}
