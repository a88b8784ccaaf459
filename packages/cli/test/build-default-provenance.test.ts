/**
 * buildx's default provenance attestation, judged against `docker buildx build` on the rig's
 * engine (containerd image store): with no provenance asked for, an image output carries a
 * mode=min provenance attestation (buildx sends `attest:provenance=mode=min,inline-only=true`),
 * a local export gets no provenance file, and BUILDX_NO_DEFAULT_ATTESTATIONS=1 or
 * `--provenance=false` leaves it out. The images are pushed to the rig's registry and read
 * back from it (an `-o type=oci` archive gets no inline-only attestation, from either client).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from '@jest/globals';
import { baseImage, buildx, ktlBuild, modes, ok, rig } from './reference';

const registry = rig.KTL_RIG_REGISTRY;

const dir = mkdtempSync(join(tmpdir(), 'ktl-provenance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ctx = join(dir, 'ctx');
mkdirSync(ctx);
writeFileSync(join(ctx, 'Dockerfile'), `FROM ${baseImage}\nRUN echo hi > /hi\n`);

interface Descriptor {
  mediaType: string;
  digest: string;
  annotations?: Record<string, string>;
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(',');

/** The pushed image's manifests, as kinds: `image` or `attestation (predicate types)`. */
async function kinds(ref: string): Promise<string[]> {
  const [repo, tag] = ref.slice(registry!.length + 1).split(':');
  const get = async (what: string) => {
    const r = await fetch(`http://${registry}/v2/${repo}/${what}`, { headers: { Accept: ACCEPT } });
    if (!r.ok) throw new Error(`GET ${what}: ${r.status}`);
    return (await r.json()) as {
      mediaType?: string;
      manifests?: Descriptor[];
      layers?: Descriptor[];
    };
  };
  const top = await get(`manifests/${tag}`);
  if (!top.manifests) return ['image'];
  const out: string[] = [];
  for (const m of top.manifests) {
    if (m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest') out.push('image');
    else {
      const layers = (await get(`manifests/${m.digest}`)).layers ?? [];
      out.push(
        `attestation (${layers.map((l) => l.annotations?.['in-toto.io/predicate-type']).join(', ')})`,
      );
    }
  }
  return out.sort();
}

const PROVENANCE = 'attestation (https://slsa.dev/provenance/v0.2)';
const uniq = () => Math.random().toString(36).slice(2, 10);

describe.each(modes)('default provenance, ktl $label', (mode) => {
  const tag = mode.sandboxed ? 'sandbox' : 'host';
  const out = (n: string) => join(dir, `${tag}-${n}`);

  mode.gate.test(
    `a pushed image gets a mode=min provenance attestation as buildx's does; BUILDX_NO_DEFAULT_ATTESTATIONS=1 and --provenance=false leave it out; a local export gets none${mode.gate.why}`,
    async () => {
      const ref = (n: string) => `${registry}/ktl-test/provenance-${tag}-${n}:${uniq()}`;
      const push = (r: string, env: Record<string, string> = {}, more: string[] = []) =>
        ok(ktlBuild([ctx, ...more, '--push', '-t', r], mode, { env }), 'ktl');
      const ours = ref('ktl');
      const theirs = ref('buildx');
      push(ours);
      ok(buildx([ctx, '--push', '-t', theirs]), 'buildx');
      expect(await kinds(ours)).toEqual(await kinds(theirs));
      expect(await kinds(ours)).toEqual([PROVENANCE, 'image']);

      const off = { BUILDX_NO_DEFAULT_ATTESTATIONS: '1' };
      const oursOff = ref('ktl-off');
      const theirsOff = ref('buildx-off');
      push(oursOff, off);
      ok(buildx([ctx, '--push', '-t', theirsOff], { env: off }), 'buildx');
      expect(await kinds(oursOff)).toEqual(await kinds(theirsOff));
      expect(await kinds(oursOff)).toEqual(['image']);

      const oursFalse = ref('ktl-false');
      push(oursFalse, {}, ['--provenance=false']);
      expect(await kinds(oursFalse)).toEqual(['image']);

      ok(ktlBuild([ctx, '-o', `type=local,dest=${out('local')}`], mode), 'ktl');
      expect(existsSync(join(out('local'), 'provenance.json'))).toBe(false);
      expect(existsSync(join(out('local'), 'hi'))).toBe(true);
    },
    60_000,
  );

  mode.gate.test(
    `BUILDX_NO_DEFAULT_ATTESTATIONS set to a non-boolean is a usage error (exit 2), as buildx refuses it${mode.gate.why}`,
    () => {
      const r = ktlBuild([ctx, '-o', `type=local,dest=${out('bad')}`], mode, {
        env: { BUILDX_NO_DEFAULT_ATTESTATIONS: 'maybe' },
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('BUILDX_NO_DEFAULT_ATTESTATIONS "maybe": expected a boolean');
      const ref = buildx([ctx, '-o', `type=local,dest=${out('bad-buildx')}`], {
        env: { BUILDX_NO_DEFAULT_ATTESTATIONS: 'maybe' },
      });
      expect(ref.code).not.toBe(0);
      expect(ref.stderr).toContain('invalid BUILDX_NO_DEFAULT_ATTESTATIONS');
    },
  );
});
