/**
 * `--attest` and its shorthand `--provenance`, in buildx's syntax. Each becomes the frontend
 * attribute `attest:<type>` carrying the value as typed (`type=provenance,mode=max`), which is
 * what buildx sends, so the daemon sees the same request from either client.
 *
 * Only provenance is accepted: an SBOM attestation runs a scanner image
 * (docker/buildkit-syft-scanner) that ktl has not been tested with, so `type=sbom` is refused
 * rather than passed on untested.
 */
import { parseFields } from './output-spec';
import { BuildUsageError } from './usage-error';

/** Keys BuildKit (v0.13) reads from a provenance attestation request, plus buildx's own two. */
const PROVENANCE_KEYS = new Set([
  'type',
  'disabled',
  'mode',
  'builder-id',
  'filename',
  'inline-only',
  'reproducible',
  'capture-usage',
]);
const BOOL = /^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/;
const TRUE = /^(1|t|T|TRUE|true|True)$/;

/**
 * `--provenance VALUE` / `--sbom VALUE` as buildx expands them: a boolean toggles, anything
 * else is attributes.
 */
export function canonicalAttest(type: 'provenance' | 'sbom', value: string): string {
  if (BOOL.test(value)) return `type=${type},disabled=${!TRUE.test(value)}`;
  return `type=${type},${value}`;
}

/**
 * The `attest:<type>` frontend attributes for the given `--attest` values (shorthands already
 * expanded). A disabled attestation sends nothing. A type given twice is refused, as buildx does.
 */
export function parseAttests(values: readonly string[]): Record<string, string> {
  const flag = '--attest';
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const value of values) {
    if (value.trim() === '') throw new BuildUsageError(flag, value, 'empty attestation');
    const { fields, bare } = parseFields(flag, value);
    if (bare.length > 0) {
      throw new BuildUsageError(flag, value, `"${bare[0]}" is not key=value`);
    }
    const type = fields.get('type');
    if (type === undefined || type === '') {
      throw new BuildUsageError(flag, value, 'type= is required', 'e.g. type=provenance,mode=max');
    }
    if (seen.has(type)) throw new BuildUsageError(flag, value, `type=${type} given twice`);
    seen.add(type);
    const off = fields.get('disabled');
    if (type === 'sbom' && off !== undefined && TRUE.test(off)) continue; // asks for nothing
    if (type === 'sbom') {
      throw new BuildUsageError(
        flag,
        value,
        'SBOM attestations are not supported: they run a scanner image (docker/buildkit-syft-scanner) ktl is not tested with',
        'drop the SBOM request; provenance (--provenance mode=max) is supported',
      );
    }
    if (type !== 'provenance') {
      throw new BuildUsageError(flag, value, `type=${type}: expected provenance`);
    }
    for (const k of fields.keys()) {
      if (!PROVENANCE_KEYS.has(k)) {
        throw new BuildUsageError(
          flag,
          value,
          `unknown field "${k}" for type=provenance`,
          `use ${[...PROVENANCE_KEYS].map((x) => `${x}=`).join(', ')}`,
        );
      }
    }
    const mode = fields.get('mode');
    if (mode !== undefined && mode !== 'min' && mode !== 'max') {
      throw new BuildUsageError(flag, value, `mode=${mode}: expected min or max`);
    }
    for (const k of ['disabled', 'inline-only', 'reproducible', 'capture-usage']) {
      const v = fields.get(k);
      if (v !== undefined && !BOOL.test(v)) {
        throw new BuildUsageError(flag, value, `${k}=${v}: expected true or false`);
      }
    }
    const disabled = fields.get('disabled');
    if (disabled !== undefined && TRUE.test(disabled)) continue;
    out[type] = value;
  }
  return out;
}

/** buildx's default attestation: what it sends when the command line asks for no provenance. */
export const DEFAULT_PROVENANCE = 'mode=min,inline-only=true';
const NO_DEFAULT_ENV = 'BUILDX_NO_DEFAULT_ATTESTATIONS';

/**
 * Whether the build gets buildx's default provenance attestation (`mode=min,inline-only=true`:
 * in image outputs only, so `--push`/`--load` images carry it and local/tar exports do not)
 * where the builder can make attestations: when no `--attest type=provenance` or `--provenance`
 * was given (even a disabled one), and BUILDX_NO_DEFAULT_ATTESTATIONS is not true. As buildx,
 * that variable set to anything but a Go boolean is an error.
 */
export function wantsDefaultProvenance(
  attest: readonly string[],
  provenance: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  const off = env[NO_DEFAULT_ENV];
  if (off !== undefined && !BOOL.test(off))
    throw new BuildUsageError(
      NO_DEFAULT_ENV,
      off,
      'expected a boolean (1, t, true, 0, f, false, ...)',
      'set it to 1 to build without the default provenance attestation',
    );
  if (off !== undefined && TRUE.test(off)) return false;
  if (provenance !== undefined) return false;
  return !attest.some((v) => parseFields('--attest', v).fields.get('type') === 'provenance');
}
