/**
 * Special files in a local export (`-o type=local`), judged against `docker buildx build` on
 * the same build, on the host and in the sandbox: a FIFO is created as buildx creates it
 * (mode, mtime); a device node is not (buildx, as root, makes it), with a warning naming it:
 * deliberately, like the set-id bits (build-setid.test.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from '@jest/globals';
import {
  diffManifests,
  type Manifest,
  mtimesTo,
  noDirMtimes,
  treeManifest,
} from '../../buildkit-client/test/manifest';
import { baseImage, buildx, ktlBuild, modes, ok } from './reference';

const dir = mkdtempSync(join(tmpdir(), 'ktl-special-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ctx = join(dir, 'ctx');
mkdirSync(ctx);
writeFileSync(
  join(ctx, 'Dockerfile'),
  `FROM ${baseImage ?? 'scratch'} AS b\n` +
    'RUN mkdir -p /o/sub && mkfifo /o/fifo && chmod 0640 /o/fifo && mkfifo /o/sub/p && ' +
    'mknod /o/null c 1 3 && chmod 0666 /o/null && echo x > /o/f && touch -d @1700000000 /o/fifo\n' +
    'FROM scratch\nCOPY --from=b /o /\n',
);

/** Node sets file times to the microsecond (buildx: the nanosecond): compared to the µs. */
const toMicros = (m: Manifest): Manifest => mtimesTo(m, 1000);

const theirs = join(dir, 'buildx');
let reference: Manifest | undefined;
const buildxTree = (): Manifest => {
  if (!reference) {
    ok(buildx([ctx, '-o', `type=local,dest=${theirs}`]), 'buildx build');
    reference = toMicros(treeManifest(theirs, { xattrs: false }));
  }
  return reference;
};

describe.each(modes)('a local export with a FIFO and a device node, ktl $label', (mode) => {
  mode.gate.test(
    `FIFOs are made as buildx makes them; the device node is left out with a warning naming it${mode.gate.why}`,
    () => {
      const ours = join(dir, `ktl-${mode.sandboxed ? 'sandbox' : 'host'}`);
      const r = ok(ktlBuild([ctx, '-o', `type=local,dest=${ours}`], mode), 'ktl build');
      const m = toMicros(treeManifest(ours, { xattrs: false }));
      expect(diffManifests(m, buildxTree(), noDirMtimes, ['ktl', 'buildx'])).toEqual([
        'null: only in buildx (char)',
      ]);
      expect(buildxTree().get('null')).toMatchObject({ type: 'char', rdev: '1:3', mode: 0o666 });
      expect(m.get('fifo')).toMatchObject({ type: 'fifo', mode: 0o640 });
      expect(m.get('fifo')?.mtimeNs).toBe('1700000000000000000');
      expect(m.get('sub/p')?.type).toBe('fifo');
      expect(r.stderr).toMatch(
        /^WARNING: null: the export holds a character device node \(1:3\); not created in .*: ktl writes no device nodes into a local export$/m,
      );
    },
  );
});
