/**
 * A local export of 50,000 files in the sandbox, whose policy allows 4096 open files
 * (rlimit_nofile): the receiver holds a bounded number of partial files open however many the
 * daemon has requested (session-wire.test.ts counts them), so the export completes, and its
 * tree is buildx's entry by entry. Bounded in time: a hang fails the test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from '@jest/globals';
import {
  diffManifests,
  mtimesTo,
  noDirMtimes,
  treeManifest,
} from '../../buildkit-client/test/manifest';
import { baseImage, buildx, ktlBuild, modes, ok } from './reference';

const dir = mkdtempSync(join(tmpdir(), 'ktl-many-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sandboxed = modes.find((m) => m.sandboxed)!;

sandboxed.gate.test(
  `ktl in the sandbox exports 50,000 files to a local directory as buildx does${sandboxed.gate.why}`,
  () => {
    const ctx = join(dir, 'ctx');
    mkdirSync(ctx);
    writeFileSync(
      join(ctx, 'Dockerfile'),
      `FROM ${baseImage} AS b\n` +
        'RUN mkdir /o && cd /o && for d in $(seq 1 50); do mkdir $d && cd $d && seq 1 1000 | xargs touch && cd ..; done && seq 1 9999 > 1/1\n' +
        'FROM scratch\nCOPY --from=b /o /\n',
    );
    const ours = join(dir, 'ktl');
    const theirs = join(dir, 'buildx');
    const t0 = Date.now();
    ok(
      ktlBuild([ctx, '-o', `type=local,dest=${ours}`], sandboxed, { timeout: 150_000 }),
      'ktl build',
    );
    const took = Date.now() - t0;
    ok(buildx([ctx, '-o', `type=local,dest=${theirs}`]), 'buildx build');
    const m = mtimesTo(treeManifest(ours, { xattrs: false }), 1000);
    expect(m.size).toBe(50_050);
    // Times to the microsecond (ktl's local export sets them through a double).
    const diff = diffManifests(
      m,
      mtimesTo(treeManifest(theirs, { xattrs: false }), 1000),
      noDirMtimes,
    );
    expect(diff).toEqual([]);
    expect(took).toBeLessThan(150_000);
  },
  200_000,
);
