/**
 * `-o` / `--output` in buildx's syntax: comma-separated `key=value` fields (CSV, so a value
 * with commas is quoted: `"name=a,b"`), `type=` picks the exporter, and a bare path is
 * shorthand for `type=local,dest=PATH`.
 *
 *   type=local,dest=DIR      the result's files, into DIR (merged with what is there); a
 *                            multi-platform build writes DIR/linux_amd64/, DIR/linux_arm64/,
 *                            ... unless platform-split=false (one tree; a path two platforms
 *                            both have fails the export)
 *   type=tar,dest=FILE       the result's files as one tar (a directory per platform)
 *   type=oci|docker,dest=FILE  an image archive
 *   type=image,name=N[,push=true]  stored in the builder, optionally pushed
 *   type=registry,name=N     = type=image,push=true
 *   type=cacheonly           nothing exported; the result stays in the build cache
 * Other fields are passed to the exporter as attributes.
 */
import { isAbsolute, resolve } from 'node:path';
import { BuildUsageError } from './usage-error';

export type OutputSpec =
  | { readonly type: 'local'; readonly dest: string; readonly attrs: Record<string, string> }
  | {
      readonly type: 'tar' | 'oci' | 'docker';
      readonly dest: string;
      readonly attrs: Record<string, string>;
    }
  | {
      readonly type: 'image';
      /** Normalized names (may be empty: an unnamed image). */
      readonly names: string[];
      readonly push: boolean;
      /** Store in the engine's image store (what --load asks for). */
      readonly load: boolean;
      readonly attrs: Record<string, string>;
    }
  | { readonly type: 'cacheonly' };

/** Splits one CSV record (RFC 4180 quoting, as Go's encoding/csv reads it). */
export function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"' && cur === '') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw new Error('unterminated quote');
  out.push(cur);
  return out;
}

/** `k=v,k2=v2` into a map; fields without `=` are returned in `bare`. */
export function parseFields(
  flag: string,
  value: string,
): { fields: Map<string, string>; bare: string[] } {
  let parts: string[];
  try {
    parts = splitCsv(value);
  } catch (e) {
    throw new BuildUsageError(flag, value, (e as Error).message);
  }
  const fields = new Map<string, string>();
  const bare: string[] = [];
  for (const p of parts) {
    const i = p.indexOf('=');
    if (i < 0) {
      bare.push(p.trim());
      continue;
    }
    const k = p.slice(0, i).trim().toLowerCase();
    if (k === '') throw new BuildUsageError(flag, value, `field "${p}" has no key`);
    if (fields.has(k)) throw new BuildUsageError(flag, value, `"${k}" given twice`);
    fields.set(k, p.slice(i + 1));
  }
  return { fields, bare };
}

function parseBool(flag: string, value: string, key: string, v: string | undefined): boolean {
  if (v === undefined) return false;
  if (v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new BuildUsageError(flag, value, `${key}=${v}: expected true or false`);
}

export interface OutputContext {
  readonly cwd: string;
  /** Validates and normalizes an image name; throws with the reason. */
  readonly normalizeName: (name: string) => string;
}

export function parseOutput(value: string, ctx: OutputContext, flag = '--output'): OutputSpec {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(ctx.cwd, p));
  if (value.trim() === '') throw new BuildUsageError(flag, value, 'empty output');
  if (value === '-') {
    throw new BuildUsageError(
      flag,
      value,
      'writing to stdout is not supported',
      'use type=tar,dest=FILE',
    );
  }
  if (!value.includes('=') && !value.includes(',')) {
    return { type: 'local', dest: abs(value), attrs: {} };
  }
  const { fields, bare } = parseFields(flag, value);
  if (bare.length > 0) {
    throw new BuildUsageError(
      flag,
      value,
      `"${bare[0]}" is not key=value`,
      'e.g. -o type=local,dest=out',
    );
  }
  const type = fields.get('type') ?? 'local';
  fields.delete('type');
  const rest = () => Object.fromEntries(fields);
  switch (type) {
    case 'local':
    case 'tar':
    case 'oci':
    case 'docker': {
      const dest = fields.get('dest');
      fields.delete('dest');
      if (dest === undefined || dest === '') {
        throw new BuildUsageError(
          flag,
          value,
          `type=${type} needs dest=`,
          `e.g. -o type=${type},dest=${type === 'local' ? 'out' : 'out.tar'}`,
        );
      }
      if (dest === '-') {
        throw new BuildUsageError(
          flag,
          value,
          'dest=- (stdout) is not supported',
          'give a file name',
        );
      }
      if (type !== 'local' && fields.get('tar') === 'false') {
        throw new BuildUsageError(
          flag,
          value,
          'tar=false (a directory layout) is not supported',
          'drop tar=false',
        );
      }
      const split = fields.get('platform-split');
      if (split !== undefined && !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(split)) {
        // BuildKit reads it with Go's strconv.ParseBool and fails the export otherwise.
        throw new BuildUsageError(flag, value, `platform-split=${split}: expected true or false`);
      }
      return { type, dest: abs(dest), attrs: rest() };
    }
    case 'image':
    case 'registry':
    case 'moby': {
      const rawNames = fields.get('name') ?? '';
      fields.delete('name');
      const names: string[] = [];
      for (const n of rawNames
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        try {
          names.push(ctx.normalizeName(n));
        } catch (e) {
          throw new BuildUsageError(flag, value, (e as Error).message);
        }
      }
      const push = type === 'registry' || parseBool(flag, value, 'push', fields.get('push'));
      fields.delete('push');
      return { type: 'image', names, push, load: type !== 'registry' && !push, attrs: rest() };
    }
    case 'cacheonly':
      return { type: 'cacheonly' };
    default:
      throw new BuildUsageError(
        flag,
        value,
        `unknown type "${type}"`,
        'use one of local, tar, oci, docker, image, registry, cacheonly',
      );
  }
}
