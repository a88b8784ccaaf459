/**
 * What a build's Status stream says about each step, accumulated: BuildKit sends a vertex
 * again whenever it changes (and sometimes restarts one it already completed), logs arrive
 * as arbitrary byte chunks that may split lines, and sub-task statuses are keyed by their ID.
 * Renderers and the failure report read this table; it prints nothing itself.
 */
import type {
  StatusResponse,
  Vertex,
  VertexStatus,
  VertexWarning,
} from '../gen/moby/buildkit/v1/control';

/** How many of a step's last log lines are kept for the failure report. */
export const KEPT_LOG_LINES = 12;

export interface StepState {
  readonly digest: string;
  name: string;
  /** `#N` as printed; 0 until the step is first shown. */
  index: number;
  started: Date | undefined;
  completed: Date | undefined;
  cached: boolean;
  error: string;
  /** Complete log lines not yet rendered, each with its seconds-since-start. */
  pendingLogs: Array<{ readonly t: number; readonly text: string }>;
  /** Text after the last newline, per stream, waiting for the rest of its line. */
  partial: Map<number, { t: number; text: string }>;
  /** The last KEPT_LOG_LINES lines, formatted `0.123 text`, for the failure report. */
  lastLogs: string[];
  /** Statuses changed since last rendered, by ID. */
  changedStatuses: Map<string, VertexStatus>;
  warnings: VertexWarning[];
}

export class ProgressTracker {
  readonly steps = new Map<string, StepState>();
  readonly warnings: VertexWarning[] = [];
  private nextIndex = 0;

  /** Applies one StatusResponse; returns the digests that changed, in first-change order. */
  apply(s: StatusResponse): string[] {
    const changed: string[] = [];
    const touch = (d: string) => {
      if (!changed.includes(d)) changed.push(d);
    };
    for (const v of s.vertexes) {
      this.upsert(v);
      touch(v.digest);
    }
    for (const st of s.statuses) {
      const step = this.steps.get(st.vertex);
      if (!step) continue;
      step.changedStatuses.set(st.ID, st);
      touch(st.vertex);
    }
    for (const l of s.logs) {
      const step = this.steps.get(l.vertex);
      if (!step) continue;
      this.addLog(step, Number(l.stream), l.timestamp, Buffer.from(l.msg).toString('utf8'));
      touch(l.vertex);
    }
    for (const w of s.warnings) {
      this.warnings.push(w);
      const step = this.steps.get(w.vertex);
      if (step) {
        step.warnings.push(w);
        touch(w.vertex);
      }
    }
    return changed;
  }

  /** Gives the step its `#N` the first time it is shown. */
  number(step: StepState): number {
    if (step.index === 0) step.index = ++this.nextIndex;
    return step.index;
  }

  /** Moves partial lines into pendingLogs (on completion, or when output switches steps). */
  flushPartial(step: StepState): void {
    for (const p of step.partial.values()) this.pushLine(step, p.t, p.text);
    step.partial.clear();
  }

  private upsert(v: Vertex): void {
    let step = this.steps.get(v.digest);
    if (!step) {
      step = {
        digest: v.digest,
        name: v.name,
        index: 0,
        started: undefined,
        completed: undefined,
        cached: false,
        error: '',
        pendingLogs: [],
        partial: new Map(),
        lastLogs: [],
        changedStatuses: new Map(),
        warnings: [],
      };
      this.steps.set(v.digest, step);
    }
    step.name = v.name || step.name;
    step.started = v.started ?? step.started;
    // A vertex sent again without `completed` has been restarted (BuildKit reruns some
    // internal steps, e.g. loading the Dockerfile); it is open again until completed anew.
    step.completed = v.completed;
    step.cached = v.cached;
    step.error = v.error;
  }

  private addLog(step: StepState, stream: number, ts: Date | undefined, text: string): void {
    const t = secondsSince(step.started, ts);
    const prev = step.partial.get(stream);
    const lines = ((prev?.text ?? '') + text).split('\n');
    const rest = lines.pop() ?? '';
    const first = prev?.t ?? t;
    for (const [i, line] of lines.entries()) {
      this.pushLine(step, i === 0 ? first : t, line.replace(/\r$/, ''));
    }
    if (rest === '') step.partial.delete(stream);
    else step.partial.set(stream, { t: lines.length === 0 ? first : t, text: rest });
  }

  private pushLine(step: StepState, t: number, text: string): void {
    step.pendingLogs.push({ t, text });
    step.lastLogs.push(`${t.toFixed(3)} ${text}`);
    if (step.lastLogs.length > KEPT_LOG_LINES) step.lastLogs.shift();
  }
}

export function secondsSince(start: Date | undefined, at: Date | undefined): number {
  if (!start || !at) return 0;
  return Math.max(0, (at.getTime() - start.getTime()) / 1000);
}

/** go-units' HumanSize as buildx prints it: decimal units, 3 significant digits. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}
