/**
 * `--metadata-file` in buildx's format, so tools reading buildx's file read ktl's:
 * - every exporter response entry, where a value that is base64 of a non-empty JSON object
 *   (`containerimage.descriptor`, ...) is embedded as that object and anything else stays a
 *   string (`containerimage.digest`, `image.name`, ...);
 * - `buildx.build.ref`: `<builder>/<node>/<ref>`, the last part being the build's ref in the
 *   builder's history (ktl names the builder `ktl` and the node after the builder's kind);
 * - `buildx.build.provenance` (or `buildx.build.provenance/<platform>` per platform): the
 *   SLSA provenance the builder recorded for the build, base64 JSON, read from its history as
 *   buildx 0.14+ does; `min` (default) without the build's LLB and metadata, `max` whole,
 *   `disabled` left out (buildx's BUILDX_METADATA_PROVENANCE, which ktl reads too).
 * Written as Go's json.MarshalIndent writes it (keys sorted, two-space indent, HTML characters
 * escaped, no final newline), atomically (a temporary name, then a rename).
 */
import type * as Crypto from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { ProvenanceMetadataMode } from '@ktl/buildkit-client';
import { BuildUsageError } from './usage-error';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strips JSON whitespace and escapes `<`, `>`, `&`, U+2028/9 in strings (Go's compact). */
function compactGo(json: string): string {
  let out = '';
  let inString = false;
  let escaped = false;
  for (const ch of json) {
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      if (ch === '<' || ch === '>' || ch === '&' || ch === '\u2028' || ch === '\u2029') {
        out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
      } else out += ch;
    } else if (ch === '"') {
      inString = true;
      out += ch;
    } else if (ch !== ' ' && ch !== '\t' && ch !== '\n' && ch !== '\r') out += ch;
  }
  return out;
}

/** Go's json.Indent with no prefix and a two-space indent, on compact JSON. */
function indentGo(compact: string): string {
  let out = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  const nl = (d: number) => `\n${'  '.repeat(d)}`;
  for (let i = 0; i < compact.length; i++) {
    const ch = compact[i]!;
    if (inString) {
      out += ch;
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    switch (ch) {
      case '"':
        inString = true;
        out += ch;
        break;
      case '{':
      case '[': {
        const close = ch === '{' ? '}' : ']';
        if (compact[i + 1] === close) {
          out += ch + close;
          i++;
        } else {
          depth++;
          out += ch + nl(depth);
        }
        break;
      }
      case '}':
      case ']':
        depth--;
        out += nl(depth) + ch;
        break;
      case ',':
        out += ch + nl(depth);
        break;
      case ':':
        out += ': ';
        break;
      default:
        out += ch;
    }
  }
  return out;
}

const goString = (s: string) => compactGo(JSON.stringify(s));

/**
 * The exporter response as buildx's metadata file has it: base64 of a non-empty JSON object
 * becomes that object (its text kept: key order and numbers as the builder wrote them).
 */
export function decodeExporterResponse(r: Readonly<Record<string, string>>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(r)) {
    const b64 = v.replace(/[\r\n]/g, '');
    let raw: string | undefined;
    if (BASE64.test(b64)) {
      const text = Buffer.from(b64, 'base64').toString('utf8');
      try {
        const parsed: unknown = JSON.parse(text);
        if (
          parsed !== null &&
          typeof parsed === 'object' &&
          !Array.isArray(parsed) &&
          Object.keys(parsed).length > 0
        ) {
          raw = compactGo(text);
        }
      } catch {
        raw = undefined;
      }
    }
    out.set(k, raw ?? goString(v));
  }
  return out;
}

/** The metadata file's text: keys in byte order, values already JSON. */
export function formatMetadata(r: Readonly<Record<string, string>>): string {
  const entries = [...decodeExporterResponse(r)].sort(([a], [b]) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  if (entries.length === 0) return '{}';
  return indentGo(`{${entries.map(([k, v]) => `${goString(k)}:${v}`).join(',')}}`);
}

/** `buildx.build.ref`'s value for a build on `address` with Solve ref `ref`. */
export function buildRef(address: string, ref: string): string {
  return `ktl/${address.startsWith('docker://') ? 'docker' : 'buildkitd'}/${ref}`;
}

/** BUILDX_METADATA_PROVENANCE as buildx reads it: min (default), max, disabled or false. */
export function metadataProvenanceMode(
  env: Readonly<Record<string, string | undefined>>,
): ProvenanceMetadataMode {
  const v = env.BUILDX_METADATA_PROVENANCE;
  if (v === undefined || v === '' || v === 'min') return 'min';
  if (v === 'max') return 'max';
  if (v === 'disabled' || /^(0|f|F|FALSE|false|False)$/.test(v)) return 'disabled';
  if (/^(1|t|T|TRUE|true|True)$/.test(v)) return 'min';
  throw new BuildUsageError(
    'BUILDX_METADATA_PROVENANCE',
    v,
    'expected min, max or disabled',
    'unset it for the default (min)',
  );
}

/**
 * Writes `text` to `path` under a temporary name in its directory (created when missing), then
 * renames it: a reader never sees half a file, and a symlink at `path` is replaced, not
 * written through.
 */
export function writeFileAtomic(path: string, text: string, dirFd?: number): void {
  // Loaded here, not at the top: this module is in the sandbox's early start, which must not
  // pay node:crypto's loading (~5 ms) before the jail starts.
  const { randomBytes } = createRequire(import.meta.url)('node:crypto') as typeof Crypto;
  // Through a pinned directory (openat spelled /proc/self/fd/N/NAME): the directory is the one
  // checked before the build, whatever links now lie on the path; the temporary file is made
  // with O_EXCL (never through a link) and renamed over the name (replacing, not following,
  // a link there).
  const dir = dirFd === undefined ? dirname(path) : `/proc/self/fd/${dirFd}`;
  if (dirFd === undefined) mkdirSync(dir, { recursive: true });
  const tmp = join(
    dir,
    `.${basename(path)}.ktl-partial-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  try {
    writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' });
    renameSync(tmp, join(dir, basename(path)));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
