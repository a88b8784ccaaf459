import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { BindPlanError, planBuildBinds } from '../src/sandbox/binds';

const dir = mkdtempSync(join(tmpdir(), 'ktl-binds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'ctx'));
mkdirSync(join(dir, 'named'));
writeFileSync(join(dir, 'Dockerfile.other'), 'FROM scratch\n');
writeFileSync(join(dir, 'token'), 's3cret');
symlinkSync(join(dir, 'ctx'), join(dir, 'ctx-link'));

describe('planBuildBinds', () => {
  test('binds exactly what the command line names, read-only except outputs', () => {
    const { binds, ensureDirs } = planBuildBinds(
      [
        'ctx',
        '-f',
        'Dockerfile.other',
        '--build-context',
        'extra=named',
        '--build-context',
        'img=docker-image://alpine',
        '--secret',
        'id=t,src=token',
        '-o',
        'type=local,dest=out',
        '--output=type=tar,dest=art/img.tar',
        '--iidfile',
        'meta/iid',
        '-t',
        'x:1',
        '--build-arg',
        'A=/etc',
      ],
      dir,
    );
    expect(binds.map((b) => [b.dst.replace(dir, '$D'), b.readonly, b.why])).toEqual([
      ['$D/ctx', true, 'build context'],
      ['$D/Dockerfile.other', true, 'Dockerfile'],
      ['$D/named', true, 'named context extra'],
      ['$D/token', true, 'secret t'],
      ['$D/out', false, 'output local'],
      ['$D/art', false, 'output tar'],
      ['$D/meta', false, 'iidfile'],
    ]);
    expect(ensureDirs).toEqual([join(dir, 'out'), join(dir, 'art'), join(dir, 'meta')]);
  });

  test('a symlinked context is bound from its real path at the path the user typed', () => {
    const { binds } = planBuildBinds([join(dir, 'ctx-link')], dir);
    expect(binds[0]).toMatchObject({
      src: join(dir, 'ctx'),
      dst: join(dir, 'ctx-link'),
      readonly: true,
    });
  });

  test('--sandbox-bind HOST:GUEST[:ro]', () => {
    const { binds } = planBuildBinds(
      ['ctx', '--sandbox-bind', `${dir}/named:/data:ro`, `--sandbox-bind=${dir}/named:/rw`],
      dir,
    );
    expect(binds.slice(1).map((b) => [b.dst, b.readonly])).toEqual([
      ['/data', true],
      ['/rw', false],
    ]);
  });

  test.each([
    [['ctx', '--sandbox-bind', 'named'], 'expected HOST:GUEST[:ro|rw]'],
    [['ctx', '--sandbox-bind', 'named:rel'], 'GUEST must be an absolute path'],
    [['ctx', '--sandbox-bind', 'nope:/x'], 'does not exist'],
    [['ctx', '--sandbox-bind', 'named:/x:rx'], 'expected HOST:GUEST[:ro|rw]'],
    [['missing-ctx'], 'build context'],
    [['ctx', '--secret', 'id=a,src=no-such-file'], 'secret a'],
    [['Dockerfile.other'], 'is not a directory'],
  ])('refuses %j', (argv, message) => {
    expect(() => planBuildBinds(argv, dir)).toThrow(BindPlanError);
    expect(() => planBuildBinds(argv, dir)).toThrow(message);
  });
});
