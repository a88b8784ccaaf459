/**
 * `.dockerignore` patterns mean for ktl what they mean for buildx (moby's patternmatcher: Go's
 * filepath.Match grammar checks them, Go's regexp matches them), judged against `docker buildx
 * build` on the same contexts, on the host and in the sandbox: the files a context sends
 * (copied whole into an image and exported as a tar) and the error of a pattern Go rejects.
 * The pattern vectors themselves are in buildkit-client's patterns.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from '@jest/globals';
import { diffManifests, tarManifest } from '../../buildkit-client/test/manifest';
import { buildx, ktlBuild, modes, ok } from './reference';

const dir = mkdtempSync(join(tmpdir(), 'ktl-dockerignore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function context(name: string, ignore: string[], files: string[]): string {
  const c = join(dir, name);
  mkdirSync(c, { recursive: true });
  writeFileSync(join(c, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  writeFileSync(join(c, '.dockerignore'), `${ignore.join('\n')}\n`);
  for (const f of files) {
    mkdirSync(join(c, f, '..'), { recursive: true });
    writeFileSync(join(c, f), f);
  }
  return c;
}

const dirMtimes = {
  ignoreFor: (_p: string, a: { type: string }) => (a.type === 'dir' ? ['mtimeNs' as const] : []),
};

describe.each(modes)('.dockerignore, ktl $label', (mode) => {
  const tag = mode.sandboxed ? 'sandbox' : 'host';

  mode.gate.test(
    `patterns whose Go meaning JavaScript's regexps would not give (\\a is BEL, POSIX classes, \\s ASCII only) keep and drop the files buildx does${mode.gate.why}`,
    () => {
      const files = ['a', 'abc', '1bc', 'a b', 'a\u00a0b', 'sub/x.tmp', 'sub/keep.tmp', 'z9'];
      const c = context(
        `go-${tag}`,
        ['\\a', '[[:alpha:]]bc', 'a\\sb', 'sub/*.tmp', '!sub/keep*', 'z[[:digit:]]'],
        files,
      );
      const ours = join(dir, `go-${tag}-ktl.tar`);
      const theirs = join(dir, `go-${tag}-buildx.tar`);
      ok(ktlBuild([c, '--no-cache', '-o', `type=tar,dest=${ours}`], mode), 'ktl build');
      ok(buildx([c, '--no-cache', '-o', `type=tar,dest=${theirs}`]), 'buildx build');
      const m = tarManifest(ours);
      expect(diffManifests(m, tarManifest(theirs), dirMtimes, ['ktl', 'buildx'])).toEqual([]);
      expect([...m.keys()].filter((p) => files.includes(p))).toEqual([
        '1bc',
        'a',
        'a\u00a0b',
        'sub/keep.tmp',
      ]);
    },
  );

  mode.gate.test(
    `a pattern Go's filepath.Match rejects fails the build with buildx's error: "invalid excludepatterns: [...]: syntax error in pattern"${mode.gate.why}`,
    () => {
      for (const bad of ['[]a]', '[a-b-c]', 'x/[-]']) {
        const c = context(`bad-${tag}-${bad.replace(/\W/g, '_')}`, ['x.log', bad], ['a']);
        const want = `invalid excludepatterns: [x.log ${bad}]: syntax error in pattern`;
        const ref = buildx([c, '-o', `type=tar,dest=${join(c, 'buildx.tar')}`]);
        expect(ref.code).not.toBe(0);
        expect(ref.stderr).toContain(want);
        const r = ktlBuild([c, '-o', `type=tar,dest=${join(dir, `bad-${tag}.tar`)}`], mode);
        expect(r.code).toBe(4);
        expect(r.stderr).toContain(`ERROR: failed to solve: error from sender: ${want}`);
      }
    },
  );
});

describe.each(modes)(
  'a Dockerfile outside the context with its own .dockerignore, ktl $label',
  (mode) => {
    mode.gate.test(
      `-f ../elsewhere/x.Dockerfile: x.Dockerfile.dockerignore beside it decides, not the context's .dockerignore, as for buildx${mode.gate.why}`,
      () => {
        const tag = mode.sandboxed ? 'sandbox' : 'host';
        const c = context(
          `own-${tag}`,
          ['keep-me-out-by-context'],
          ['a', 'drop.txt', 'keep-me-out-by-context'],
        );
        const elsewhere = join(dir, `elsewhere-${tag}`);
        mkdirSync(elsewhere);
        writeFileSync(join(elsewhere, 'x.Dockerfile'), 'FROM scratch\nCOPY . /\n');
        writeFileSync(join(elsewhere, 'x.Dockerfile.dockerignore'), 'drop.txt\n');
        const df = join(elsewhere, 'x.Dockerfile');
        const ours = join(dir, `own-${tag}-ktl.tar`);
        const theirs = join(dir, `own-${tag}-buildx.tar`);
        ok(ktlBuild(['-f', df, c, '--no-cache', '-o', `type=tar,dest=${ours}`], mode), 'ktl build');
        ok(buildx(['-f', df, c, '--no-cache', '-o', `type=tar,dest=${theirs}`]), 'buildx build');
        const m = tarManifest(ours);
        expect(diffManifests(m, tarManifest(theirs), dirMtimes, ['ktl', 'buildx'])).toEqual([]);
        expect(m.has('drop.txt')).toBe(false);
        expect(m.has('keep-me-out-by-context')).toBe(true);
      },
    );
  },
);
