/**
 * The builder's build history and content store, on the rig's engine (through its /grpc
 * upgrade, as every other Control call): a build's record names its results and their
 * provenance attestation; the blob reads back whole and parses; a blob bigger than allowed, or
 * not the size its descriptor says, is refused rather than trusted.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import {
  type BuildkitConnection,
  buildRecord,
  connect,
  provenanceDescriptor,
  provenanceMetadata,
  readBlob,
  solveDockerfile,
} from '../src/index';
import { probeRig, skipReason } from './rig';

const probe = await probeRig();
const base = probe.ok ? probe.rig.baseImage : undefined;
const ready = probe.ok && base !== undefined;
const rigTest = ready ? test : test.skip;
const why = probe.ok && !base ? ' [skipped: KTL_RIG_BASE_IMAGE missing]' : skipReason(probe);

let conn: BuildkitConnection | undefined;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ktl-history-'));
  if (ready) conn = await connect(`docker://${probe.ok ? probe.rig.dockerHost : ''}`);
});
afterAll(async () => {
  await conn?.close();
  await rm(work, { recursive: true, force: true });
});

rigTest(
  `a build's record, its provenance blob, and the metadata entries made of it${why}`,
  async () => {
    const ctx = join(work, 'ctx');
    await mkdir(ctx);
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM --platform=$BUILDPLATFORM ${base} AS b\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM > /p\nFROM scratch\nCOPY --from=b /p /p\n`,
    );
    const one = await solveDockerfile(conn!, {
      contextDir: ctx,
      exports: [{ type: 'local', dest: join(work, 'one') }],
    });
    const rec = await buildRecord(conn!, one.ref);
    expect(rec?.Ref).toBe(one.ref);
    expect(rec?.Frontend).toBe('dockerfile.v0');
    const desc = provenanceDescriptor(rec!.Result!);
    expect(desc?.annotations['in-toto.io/predicate-type']).toBe('https://slsa.dev/provenance/v0.2');
    const blob = await readBlob(conn!, desc!);
    expect(BigInt(blob.length)).toBe(desc!.size);
    const predicate = JSON.parse(blob.toString('utf8')) as { buildType: string };
    expect(predicate.buildType).toBe('https://mobyproject.org/buildkit@v1');

    await expect(readBlob(conn!, desc!, 100)).rejects.toThrow(`more than 100`);
    await expect(readBlob(conn!, { digest: desc!.digest, size: desc!.size + 1n })).rejects.toThrow(
      `read ${blob.length} bytes, the descriptor says ${desc!.size + 1n}`,
    );
    await expect(buildRecord(conn!, 'no-such-build-ref-0000000000')).resolves.toBeUndefined();

    expect(Object.keys(await provenanceMetadata(conn!, one.ref))).toEqual([
      'buildx.build.provenance',
    ]);
    expect(await provenanceMetadata(conn!, one.ref, 'disabled')).toEqual({});

    const multi = await solveDockerfile(conn!, {
      contextDir: ctx,
      platforms: ['linux/amd64', 'linux/arm64'],
      exports: [{ type: 'local', dest: join(work, 'multi') }],
    });
    const m = await provenanceMetadata(conn!, multi.ref, 'max');
    expect(Object.keys(m).sort()).toEqual([
      'buildx.build.provenance/linux/amd64',
      'buildx.build.provenance/linux/arm64',
    ]);
    const max = JSON.parse(
      Buffer.from(m['buildx.build.provenance/linux/arm64']!, 'base64').toString(),
    ) as Record<string, unknown>;
    expect(Object.keys(max)).toEqual(
      expect.arrayContaining(['buildType', 'materials', 'invocation', 'buildConfig', 'metadata']),
    );
  },
  90_000,
);
