/** A local (OCI layout) build cache made by hand, for the local-cache tests of every engine. */
import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * A local cache directory laid out as an exporter writes one (index.json tagged `latest`
 * naming a cache manifest whose one entry is a cache config), with no records; with `linkTo`,
 * the cache config blob is a symlink to that path (which gets the config's exact bytes).
 */
export function craftedCache(d: string, linkTo?: string): string {
  const blobs = join(d, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (data: string, link?: string) => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (link) {
      writeFileSync(link, data);
      symlinkSync(link, join(blobs, digest.slice(7)));
    } else writeFileSync(join(blobs, digest.slice(7)), data);
    return { digest, size: Buffer.byteLength(data) };
  };
  const config = put(JSON.stringify({ layers: [], records: [] }), linkTo);
  const indexType = 'application/vnd.oci.image.index.v1+json';
  const manifest = put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: indexType,
      manifests: [{ mediaType: 'application/vnd.buildkit.cacheconfig.v0', ...config }],
    }),
  );
  writeFileSync(join(d, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(d, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: indexType, ...manifest, annotations: { [REF_NAME]: 'latest' } }],
    }),
  );
  return d;
}
