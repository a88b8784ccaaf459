/**
 * Context files ktl may not read are never sent as something else: read as buildx reads them
 * where the caller may (as root: a mode-000 file, a 0700 directory; in the sandbox the jail
 * keeps CAP_DAC_READ_SEARCH over the caller's own ids for it), else the build fails naming
 * the file, with nothing built — where fsutil sends such a file empty. Judged against
 * `docker buildx build` on the same context as root, and as an unprivileged user (nobody, in
 * the group of the rig's socket) where buildx sends the file empty and ktl refuses.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { diffManifests, tarManifest } from '../../buildkit-client/test/manifest';
import { ktlBin } from './helpers';
import { buildx, dockerHost, ktlBuild, modes, ok } from './reference';

const dir = mkdtempSync(join(tmpdir(), 'ktl-unreadable-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;
const rootWhy = isRoot ? '' : ' [skipped: needs root]';
const dirMtimes = {
  ignoreFor: (_p: string, a: { type: string }) => (a.type === 'dir' ? ['mtimeNs' as const] : []),
};

function context(name: string): string {
  const c = join(dir, name);
  mkdirSync(c);
  writeFileSync(join(c, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  return c;
}

describe.each(modes)('unreadable context files, ktl $label', (mode) => {
  const t = isRoot ? mode.gate.test : test.skip;
  const why = mode.gate.why || rootWhy;
  const tag = mode.sandboxed ? 'sandbox' : 'host';

  t(
    `as root: a mode-000 file and a mode-000 directory of root's are sent whole, as buildx sends them${why}`,
    () => {
      const c = context(`root-${tag}`);
      writeFileSync(join(c, 'm000'), 'secret bytes\n');
      chmodSync(join(c, 'm000'), 0o000);
      writeFileSync(join(c, 'wonly'), 'write-only\n');
      chmodSync(join(c, 'wonly'), 0o200);
      mkdirSync(join(c, 'd000'));
      writeFileSync(join(c, 'd000', 'f'), 'in a closed directory\n');
      chmodSync(join(c, 'd000'), 0o000);
      const ours = join(dir, `root-${tag}-ktl.tar`);
      const theirs = join(dir, `root-${tag}-buildx.tar`);
      ok(ktlBuild([c, '--no-cache', '-o', `type=tar,dest=${ours}`], mode), 'ktl build');
      ok(buildx([c, '--no-cache', '-o', `type=tar,dest=${theirs}`]), 'buildx build');
      const m = tarManifest(ours);
      expect(diffManifests(m, tarManifest(theirs), dirMtimes, ['ktl', 'buildx'])).toEqual([]);
      expect(m.get('m000')).toMatchObject({ size: 13, mode: 0 });
      expect(m.get('wonly')).toMatchObject({ size: 11, mode: 0o200 });
      expect(m.get('d000/f')?.size).toBe(22);
    },
  );

  t(
    `as root: another user's 0600 file and 0700 directory${mode.sandboxed ? ' fail the build naming them (the jail has no privilege over ids it does not map), with the hint' : ' are sent whole, as buildx sends them'}${why}`,
    () => {
      const c = context(`other-${tag}`);
      writeFileSync(join(c, 'theirs'), 'only 4321 reads this\n');
      chownSync(join(c, 'theirs'), 4321, 4321);
      chmodSync(join(c, 'theirs'), 0o600);
      const ours = join(dir, `other-${tag}-ktl.tar`);
      const theirs = join(dir, `other-${tag}-buildx.tar`);
      ok(buildx([c, '--no-cache', '-o', `type=tar,dest=${theirs}`]), 'buildx build');
      expect(tarManifest(theirs).get('theirs')?.size).toBe(21);
      const r = ktlBuild([c, '--no-cache', '-o', `type=tar,dest=${ours}`], mode);
      if (!mode.sandboxed) {
        ok(r, 'ktl build');
        expect(diffManifests(tarManifest(ours), tarManifest(theirs), dirMtimes)).toEqual([]);
      } else {
        expect(r.code).toBe(4);
        expect(r.stderr).toContain(
          'theirs: this file of the build context cannot be read (permission denied)',
        );
        expect(r.stderr).toMatch(
          /^hint: the sandbox reads the context with privileges over your own/m,
        );
        expect(existsSync(ours)).toBe(false);
      }
      // A directory only its owner may list, the same way.
      rmSync(join(c, 'theirs'));
      mkdirSync(join(c, 'closed'));
      writeFileSync(join(c, 'closed', 'f'), 'f\n');
      chownSync(join(c, 'closed'), 4321, 4321);
      chmodSync(join(c, 'closed'), 0o700);
      const r2 = ktlBuild([c, '--no-cache', '-o', `type=tar,dest=${ours}`], mode);
      if (!mode.sandboxed) {
        ok(r2, 'ktl build');
        expect(tarManifest(ours).get('closed/f')?.size).toBe(2);
      } else {
        expect(r2.code).toBe(4);
        expect(r2.stderr).toContain(
          'closed: this directory of the build context cannot be listed (permission denied)',
        );
        expect(existsSync(ours)).toBe(false);
      }
    },
  );
});

// An unprivileged user: nobody, with the rig socket's group for both clients.
const socketGid = dockerHost ? statSync(dockerHost.replace('unix://', '')).gid : undefined;
const setpriv = isRoot && spawnSync('setpriv', ['--version']).status === 0;
const asNobody = (cmd: string, args: string[], env: Record<string, string>) => {
  const home = join(dir, 'nobody-home');
  mkdirSync(home, { recursive: true });
  chownSync(home, 65534, 65534);
  const r = spawnSync(
    'setpriv',
    ['--reuid', '65534', '--regid', '65534', '--groups', String(socketGid), cmd, ...args],
    {
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        DOCKER_HOST: dockerHost ?? '',
        DOCKER_CONFIG: join(home, '.docker'),
        ...env,
      },
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('as an unprivileged user (nobody)', () => {
  const gate = modes[1]!.gate; // the sandboxed case needs bubblewrap too
  const t = setpriv && socketGid !== undefined ? gate.test : test.skip;
  const why = gate.why || (setpriv ? '' : ' [skipped: needs root and setpriv to become nobody]');

  t(
    `a file of one's own with mode 000: buildx sends it empty; ktl on the host refuses naming it, in the sandbox sends it whole (its root holds the read capability over the caller's own files)${why}`,
    () => {
      const c = context('nobody');
      writeFileSync(join(c, 'm000'), 'mine, unreadable\n');
      chmodSync(join(c, 'm000'), 0o000);
      chownSync(c, 65534, 65534);
      chownSync(join(c, 'Dockerfile'), 65534, 65534);
      chownSync(join(c, 'm000'), 65534, 65534);
      const out = join(dir, 'nobody-out');
      mkdirSync(out);
      chownSync(out, 65534, 65534);
      const ref = asNobody(
        '/usr/libexec/docker/cli-plugins/docker-buildx',
        ['build', '--progress=plain', c, '-o', `type=tar,dest=${out}/buildx.tar`],
        {},
      );
      ok(ref, 'buildx as nobody');
      expect(tarManifest(join(out, 'buildx.tar')).get('m000')?.size).toBe(0); // fsutil: empty
      const host = asNobody(ktlBin, ['build', c, '-o', `type=tar,dest=${out}/host.tar`], {
        KTL_SANDBOX_DISABLE: '1',
      });
      expect(host.code).toBe(4);
      expect(host.stderr).toContain(
        'm000: this file of the build context cannot be read (permission denied)',
      );
      expect(existsSync(join(out, 'host.tar'))).toBe(false);
      const jailed = asNobody(ktlBin, ['build', c, '-o', `type=tar,dest=${out}/jail.tar`], {});
      ok(jailed, 'ktl as nobody in the sandbox');
      expect(tarManifest(join(out, 'jail.tar')).get('m000')).toMatchObject({ size: 17, mode: 0 });
    },
  );
});
