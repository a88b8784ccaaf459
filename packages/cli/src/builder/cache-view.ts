/**
 * Shared by `ktl builder ls|du|prune`: reaching the builder `ktl build` would use, and
 * printing cache records the way `docker buildx du` does. Loaded on use by those commands.
 */
import {
  type BuildkitConnection,
  BuildkitError,
  type CacheRecord,
  connect,
  humanSize,
  type UsageSummary,
} from '@ktl/buildkit-client';
import { managedCandidates, START_HINT } from './managed';

/** Exit statuses of `ktl builder ls|du|prune` (stable). */
export const CacheExit = {
  OK: 0,
  /** prune: declined at the confirmation prompt. */
  DECLINED: 1,
  USAGE: 2,
  NO_BUILDER: 3,
  /** The builder refused or failed DiskUsage / Prune. */
  BUILDER_FAILED: 4,
  /** prune: Ctrl-C at the confirmation prompt (nothing was sent). */
  INTERRUPTED: 130,
} as const;

export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly hint?: string | undefined,
  ) {
    super(message);
  }
}

export function report(e: unknown): number {
  let err: CommandError;
  if (e instanceof CommandError) err = e;
  else if (BuildkitError.is(e)) {
    const code =
      e.code === 'E_BAD_ADDRESS' || e.code === 'E_BAD_OPTION'
        ? CacheExit.USAGE
        : e.code === 'E_NO_BUILDER' || e.code === 'E_CONNECT' || e.code === 'E_UPGRADE'
          ? CacheExit.NO_BUILDER
          : CacheExit.BUILDER_FAILED;
    const hint = e.code === 'E_NO_BUILDER' ? START_HINT : e.hint;
    // The discovery error already lists its hint inline after the attempts.
    const message =
      e.code === 'E_NO_BUILDER' ? e.message.split('\n').slice(0, -1).join('\n') : e.message;
    err = new CommandError(message, code, hint);
  } else throw e;
  process.stderr.write(`ERROR: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
  return err.exitCode;
}

/** The builder `ktl build` would use (or --builder). */
export function connectBuilder(builder: string | undefined): Promise<BuildkitConnection> {
  return connect(builder, { preferred: managedCandidates(process.env) });
}

/** `docker`-style "2 minutes ago" wording. */
export function ago(d: Date | undefined, now = Date.now()): string {
  if (!d) return '';
  const s = Math.max(0, (now - d.getTime()) / 1000);
  const n = (v: number, unit: string) =>
    `${Math.floor(v)} ${unit}${Math.floor(v) === 1 ? '' : 's'}`;
  const text =
    s < 1
      ? 'Less than a second'
      : s < 60
        ? n(s, 'second')
        : s < 3600
          ? n(s / 60, 'minute')
          : s < 48 * 3600
            ? n(s / 3600, 'hour')
            : s < 14 * 86400
              ? n(s / 86400, 'day')
              : s < 60 * 86400
                ? n(s / (7 * 86400), 'week')
                : s < 2 * 365 * 86400
                  ? n(s / (30 * 86400), 'month')
                  : n(s / (365 * 86400), 'year');
  return `${text} ago`;
}

/** Left-aligned columns, two spaces apart. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) {
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  }
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** A row printed as it arrives (prune streams): fixed widths instead of measured ones. */
export function streamRow(cols: readonly string[]): string {
  const widths = [27, 12, 10];
  return cols
    .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
    .join('  ')
    .trimEnd();
}

export const RECORD_HEADER = ['ID', 'RECLAIMABLE', 'SIZE', 'LAST ACCESSED'] as const;

/** One table row: a `*` after the id marks mutable, after the size shared. */
export function recordRow(r: CacheRecord): string[] {
  return [
    `${r.id}${r.mutable ? '*' : ''}`,
    String(!r.inUse),
    `${humanSize(Math.max(0, r.size))}${r.shared ? '*' : ''}`,
    ago(r.lastUsedAt),
  ];
}

export function recordVerbose(r: CacheRecord): string[] {
  const kv: [string, string][] = [['ID', r.id]];
  if (r.parents.length > 0) kv.push(['Parents', r.parents.join(',')]);
  if (r.createdAt) kv.push(['Created at', r.createdAt.toISOString()]);
  kv.push(
    ['Mutable', String(r.mutable)],
    ['Reclaimable', String(!r.inUse)],
    ['Shared', String(r.shared)],
    ['Size', humanSize(Math.max(0, r.size))],
  );
  if (r.description) kv.push(['Description', r.description]);
  kv.push(['Usage count', String(r.usageCount)]);
  if (r.lastUsedAt) kv.push(['Last used', ago(r.lastUsedAt)]);
  if (r.recordType) kv.push(['Type', r.recordType]);
  return [...table(kv.map(([k, v]) => [`${k}:`, v])), ''];
}

export function summaryLines(s: UsageSummary): string[] {
  const rows: [string, string][] = [];
  if (s.shared > 0) {
    rows.push(['Shared:', humanSize(s.shared)], ['Private:', humanSize(s.private)]);
  }
  rows.push(['Reclaimable:', humanSize(s.reclaimable)], ['Total:', humanSize(s.total)]);
  return table(rows);
}

export function recordJson(r: CacheRecord) {
  return {
    ...r,
    createdAt: r.createdAt?.toISOString() ?? null,
    lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
  };
}
