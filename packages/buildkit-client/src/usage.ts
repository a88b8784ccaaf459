/**
 * A builder's build cache: what it holds (Control.DiskUsage) and removing some of it
 * (Control.Prune, a server stream of the records it deleted).
 *
 * Filters are written the Docker way, `key=value` (`type=source.local`, `id=abc`,
 * `until=24h`), and sent as one containerd filter expression (all conditions must hold):
 * `id` matches by prefix/regex (`id~=`), `key!=v` and `key~=v` pass through, every other key
 * is an exact match. `until` (alias `unused-for`) is not a filter on the wire: Prune reads it
 * as keepDuration, DiskUsage as ageLimit (records used more recently are left out).
 */
import type { ClientReadableStream } from '@grpc/grpc-js';
import { BuildkitError } from './errors';
import {
  DiskUsageRequest,
  type DiskUsageResponse,
  PruneRequest,
  type UsageRecord as WireRecord,
} from './gen/moby/buildkit/v1/control';
import type { BuildkitConnection } from './transport/connect';
import { fromGrpc, unary } from './transport/grpc-errors';

/** One cache record, as DiskUsage lists it and Prune reports it deleted. */
export interface CacheRecord {
  readonly id: string;
  /** A snapshot still written to (shown with a `*` after the id). */
  readonly mutable: boolean;
  /** Held by a running build; not reclaimable now. */
  readonly inUse: boolean;
  /** Bytes on disk (0 or -1 when the daemon has not sized it). */
  readonly size: number;
  readonly createdAt: Date | undefined;
  readonly lastUsedAt: Date | undefined;
  readonly usageCount: number;
  readonly description: string;
  /** `regular`, `source.local`, `exec.cachemount`, `source.git.checkout`, `internal`, `frontend`. */
  readonly recordType: string;
  /** Its data is also used outside the cache (e.g. by an image); pruning it frees nothing. */
  readonly shared: boolean;
  readonly parents: readonly string[];
}

function fromWire(r: WireRecord): CacheRecord {
  return {
    id: r.ID,
    mutable: r.Mutable,
    inUse: r.InUse,
    size: Number(r.Size),
    createdAt: r.CreatedAt,
    lastUsedAt: r.LastUsedAt,
    usageCount: Number(r.UsageCount),
    description: r.Description,
    recordType: r.RecordType,
    shared: r.Shared,
    parents: [...r.Parents],
  };
}

const badOption = (message: string, hint: string) =>
  new BuildkitError(message, { code: 'E_BAD_OPTION', hint });

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
};

/**
 * A size as Docker's `--keep-storage` reads it: a number with an optional binary unit,
 * case-insensitive (`512`, `128mb`, `2GiB`, `1.5g`, `10 KB`); k is 1024. Returns bytes.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i?)b?|(b?))\s*$/i.exec(text);
  if (!m) {
    throw badOption(
      `invalid size ${JSON.stringify(text)}`,
      'give bytes or a number with a unit: 512, 128mb, 2gb, 1.5GiB (k = 1024)',
    );
  }
  const bytes = Math.floor(Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) {
    throw badOption(
      `size ${JSON.stringify(text)} is too large`,
      'give a size below 8PiB, e.g. 128mb or 2gb',
    );
  }
  return bytes;
}

const DURATION_UNITS_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration (`24h`, `2h30m`, `90s`, `1.5h`) in nanoseconds. */
export function parseDuration(text: string): bigint {
  const t = text.trim();
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let ns = 0;
  let at = 0;
  while (at < t.length) {
    part.lastIndex = at;
    const m = part.exec(t);
    if (!m) break;
    ns += Number(m[1]) * DURATION_UNITS_NS[m[2]!]!;
    at = part.lastIndex;
  }
  if (t === '0') return 0n;
  if (t === '' || at !== t.length || !Number.isFinite(ns)) {
    throw badOption(
      `invalid duration ${JSON.stringify(text)}`,
      'give a duration with units, e.g. 24h, 2h30m, 90s',
    );
  }
  return BigInt(Math.round(ns));
}

/** Filter keys BuildKit understands on cache records. */
export const CACHE_FILTER_KEYS = [
  'id',
  'parents',
  'description',
  'type',
  'inuse',
  'mutable',
  'immutable',
  'shared',
  'private',
] as const;
/** Keys that are conditions without a value (`--filter private`, or `private=true`). */
const FLAG_KEYS: Record<string, string | undefined> = {
  inuse: undefined,
  mutable: 'immutable',
  immutable: 'mutable',
  shared: 'private',
  private: 'shared',
};

export interface CacheFilter {
  /** The containerd filter expressions to send (empty: everything). */
  readonly filter: string[];
  /** From `until=`: nanoseconds; records used more recently than this are kept / left out. */
  readonly olderThanNs: bigint;
}

/** A value as the containerd filter grammar reads it, quoted when it has to be. */
function filterValue(v: string): string {
  // Bare values are safe only when plain: the grammar reads `.` as a field separator at the
  // start, `/`, `|` and `"` as quotes, `,` and spaces as the end of the value.
  return /^[A-Za-z0-9_][A-Za-z0-9_.:@+-]*$/.test(v) ? v : JSON.stringify(v);
}

/** Turns Docker-style `key=value` filters into what DiskUsage and Prune take. */
export function cacheFilter(specs: readonly string[]): CacheFilter {
  const hint = `filters are key=value with key one of ${CACHE_FILTER_KEYS.join(', ')}, until (a duration); key!=value and key~=regexp also work`;
  const seen = new Set<string>();
  const parts: string[] = [];
  let olderThanNs = 0n;
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    let key = (eq < 0 ? spec : spec.slice(0, eq)).trim();
    const value = eq < 0 ? undefined : spec.slice(eq + 1);
    const op = key.endsWith('!') || key.endsWith('~') ? key.slice(-1) : '';
    const name = op ? key.slice(0, -1) : key;
    if (seen.has(key)) throw badOption(`filter ${JSON.stringify(key)} given twice`, hint);
    seen.add(key);
    if (name === 'until' || name === 'unused-for') {
      if (op || value === undefined)
        throw badOption(`filter ${JSON.stringify(spec)}: until=DURATION`, hint);
      if (seen.has(name === 'until' ? 'unused-for' : 'until')) {
        throw badOption('filters "until" and "unused-for" conflict (they are the same)', hint);
      }
      olderThanNs = parseDuration(value);
      continue;
    }
    if (!(CACHE_FILTER_KEYS as readonly string[]).includes(name)) {
      throw badOption(`unknown filter ${JSON.stringify(name)} in ${JSON.stringify(spec)}`, hint);
    }
    if (name in FLAG_KEYS) {
      if (op) throw badOption(`filter ${JSON.stringify(spec)}: ${name} takes no operator`, hint);
      const v = (value ?? 'true').toLowerCase();
      if (v === 'true') parts.push(name);
      else if (v === 'false' && FLAG_KEYS[name]) parts.push(FLAG_KEYS[name]);
      else throw badOption(`filter ${JSON.stringify(spec)}: give ${name} or ${name}=true`, hint);
      continue;
    }
    if (value === undefined || value === '') {
      throw badOption(`filter ${JSON.stringify(spec)} needs a value`, hint);
    }
    // id: prefix or regexp, as `docker buildx prune --filter id=...` does.
    key = op ? `${name}${op}=` : name === 'id' ? 'id~=' : `${name}==`;
    parts.push(`${key}${filterValue(value)}`);
  }
  return { filter: parts.length > 0 ? [parts.join(',')] : [], olderThanNs };
}

export interface DiskUsageOptions {
  /** Docker-style `key=value` filters (see cacheFilter). */
  readonly filters?: readonly string[];
  readonly timeoutMs?: number;
}

/** The builder's cache records, smallest first (ties by id). */
export async function diskUsage(
  conn: BuildkitConnection,
  opts: DiskUsageOptions = {},
): Promise<CacheRecord[]> {
  const f = cacheFilter(opts.filters ?? []);
  const res = await unary<DiskUsageRequest, DiskUsageResponse>(
    'DiskUsage',
    conn.control.diskUsage.bind(conn.control),
    DiskUsageRequest.fromPartial({ filter: f.filter, ageLimit: f.olderThanNs }),
    opts.timeoutMs ?? 60_000,
  );
  return res.record.map(fromWire).sort((a, b) => a.size - b.size || a.id.localeCompare(b.id));
}

export interface UsageSummary {
  /** Sum of all sized records. */
  readonly total: number;
  /** Of which not in use by a running build. */
  readonly reclaimable: number;
  /** Of which also used outside the cache. */
  readonly shared: number;
  /** total - shared. */
  readonly private: number;
}

export function summarizeUsage(records: readonly CacheRecord[]): UsageSummary {
  let total = 0;
  let reclaimable = 0;
  let shared = 0;
  for (const r of records) {
    if (r.size <= 0) continue;
    total += r.size;
    if (!r.inUse) reclaimable += r.size;
    if (r.shared) shared += r.size;
  }
  return { total, reclaimable, shared, private: total - shared };
}

export interface PruneOptions {
  /**
   * Also remove internal and frontend records and records shared with images. Without it
   * BuildKit only removes unused cache that is private to it.
   */
  readonly all?: boolean;
  /** Docker-style `key=value` filters (see cacheFilter); `until=` keeps recently used records. */
  readonly filters?: readonly string[];
  /** Keep this many bytes of cache (Docker's `--keep-storage`; BuildKit's reservedSpace). */
  readonly reservedSpace?: number;
  /** Prune down to at most this many bytes (BuildKit v0.17+). */
  readonly maxUsedSpace?: number;
  /** Prune until the disk has this many bytes free (BuildKit v0.17+). */
  readonly minFreeSpace?: number;
  /** Each record as the builder deletes it. */
  readonly onRecord?: (r: CacheRecord) => void;
  readonly signal?: AbortSignal;
}

export interface PruneResult {
  readonly records: CacheRecord[];
  /** Sum of the deleted records' sizes. */
  readonly reclaimed: number;
}

/** Removes cache on the builder; resolves when the builder has finished. */
export async function prune(
  conn: BuildkitConnection,
  opts: PruneOptions = {},
): Promise<PruneResult> {
  const f = cacheFilter(opts.filters ?? []);
  const req = PruneRequest.fromPartial({
    filter: f.filter,
    all: opts.all ?? false,
    keepDuration: f.olderThanNs,
    reservedSpace: BigInt(opts.reservedSpace ?? 0),
    maxUsedSpace: BigInt(opts.maxUsedSpace ?? 0),
    minFreeSpace: BigInt(opts.minFreeSpace ?? 0),
  });
  const records: CacheRecord[] = [];
  let reclaimed = 0;
  const stream: ClientReadableStream<WireRecord> = conn.control.prune(req);
  const onAbort = () => stream.cancel();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (w: WireRecord) => {
        const r = fromWire(w);
        records.push(r);
        if (r.size > 0) reclaimed += r.size;
        opts.onRecord?.(r);
      });
      stream.on('error', (e) => reject(fromGrpc('Prune', e)));
      stream.on('end', () => resolve());
    });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return { records, reclaimed };
}
