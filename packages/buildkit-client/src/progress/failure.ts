/**
 * Turning a failed build into a report a user can act on: which step failed, where it is in
 * the Dockerfile, what it printed last and how the process exited. BuildKit puts these in the
 * error's details as JSON (`errdefs.Vertex+json` = the step's digest, `errdefs.Source+json` =
 * the Dockerfile text and line ranges, `ExitMessage+json` = the exit code); the step's name
 * and logs come from the Status stream.
 */
import type { BuildkitError, BuildkitErrorDetail } from '../errors';
import type { ProgressTracker } from './tracker';

export interface SourceLocation {
  readonly filename: string;
  /** 1-based, inclusive. */
  readonly startLine: number;
  readonly endLine: number;
  /** The framed excerpt buildx prints (`   2 | >>> RUN ...`), with a `Dockerfile:2` header. */
  readonly excerpt: readonly string[];
}

export interface FailureReport {
  /** BuildKit's message, e.g. `process "/bin/sh -c exit 3" did not complete successfully: exit code: 3`. */
  readonly message: string;
  /** The failing step's name, e.g. `[2/2] RUN exit 3`. */
  readonly step: string | undefined;
  /** Its `#N` in the plain output. */
  readonly stepIndex: number | undefined;
  readonly source: SourceLocation | undefined;
  /** The process's exit code, for a failed RUN. */
  readonly exitCode: number | undefined;
  /** The step's last log lines (`0.123 text`). */
  readonly logs: readonly string[];
}

interface SourceJson {
  info?: { filename?: string; data?: string };
  ranges?: Array<{ start?: { line?: number }; end?: { line?: number } }>;
}

function detail(details: readonly BuildkitErrorDetail[], suffix: string): unknown {
  return details.find((d) => d.typeUrl.endsWith(suffix))?.json;
}

/** BuildKit's errdefs.Source.Print: pad the range with context lines, mark the range `>>>`. */
export function sourceExcerpt(
  filename: string,
  text: string,
  start: number,
  end: number,
): SourceLocation {
  const lines = text.split('\n');
  let from = start;
  let to = end;
  const pad = start === end ? 4 : 2;
  for (let p = 0; p < pad; p++) {
    if (from > 1) {
      from--;
      p++;
    }
    if (to < lines.length) {
      to++;
      p++;
    }
  }
  const excerpt = [`${filename}:${start}`, '-'.repeat(20)];
  for (let i = from; i <= to && i <= lines.length; i++) {
    const mark = i >= start && i <= end ? '>>>' : '   ';
    excerpt.push(`${String(i).padStart(4)} | ${mark} ${lines[i - 1] ?? ''}`);
  }
  excerpt.push('-'.repeat(20));
  return { filename, startLine: start, endLine: end, excerpt };
}

function sourceOf(details: readonly BuildkitErrorDetail[]): SourceLocation | undefined {
  const src = detail(details, 'errdefs.Source+json') as SourceJson | undefined;
  const ranges = src?.ranges ?? [];
  if (!src?.info || ranges.length === 0) return undefined;
  const starts = ranges.map((r) => r.start?.line ?? 0).filter((n) => n > 0);
  const ends = ranges.map((r) => r.end?.line ?? r.start?.line ?? 0).filter((n) => n > 0);
  if (starts.length === 0) return undefined;
  const text = Buffer.from(src.info.data ?? '', 'base64').toString('utf8');
  return sourceExcerpt(
    src.info.filename || 'Dockerfile',
    text,
    Math.min(...starts),
    Math.max(...ends, ...starts),
  );
}

export function describeFailure(err: BuildkitError, tracker?: ProgressTracker): FailureReport {
  const vertex = detail(err.details, 'errdefs.Vertex+json') as { digest?: string } | undefined;
  let step = vertex?.digest ? tracker?.steps.get(vertex.digest) : undefined;
  // Without the Vertex detail (older daemons), the step that reported an error is the one.
  step ??= [...(tracker?.steps.values() ?? [])].find((s) => s.error !== '');
  if (step) tracker?.flushPartial(step);
  const exit = detail(err.details, 'ExitMessage+json') as { Code?: number } | undefined;
  const fromText = /exit code: (\d+)/.exec(err.message)?.[1];
  return {
    message: err.message,
    step: step?.name,
    stepIndex: step && step.index > 0 ? step.index : undefined,
    source: sourceOf(err.details),
    exitCode: exit?.Code ?? (fromText === undefined ? undefined : Number(fromText)),
    logs: step?.lastLogs ?? [],
  };
}

/** The report as buildx prints it after a failed build (without the final `ERROR:` line). */
export function formatFailure(r: FailureReport): string {
  const out: string[] = [];
  if (r.step !== undefined) {
    out.push('------', ` > ${r.step}:`, ...r.logs, '------');
  }
  if (r.source) out.push(...r.source.excerpt);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
