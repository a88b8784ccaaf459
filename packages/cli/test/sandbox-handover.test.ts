/**
 * What crosses into the jail besides binds: only the env vars the command line names, and
 * registry credentials resolved outside (helpers included) into a helper-free config.json.
 */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { parseBuildOptions } from '../src/build/options';
import { forwardedEnv } from '../src/sandbox/forward-env';
import { registryHosts, writeJailDockerConfig } from '../src/sandbox/handover';

const dir = mkdtempSync(join(tmpdir(), 'ktl-handover-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('forwardedEnv', () => {
  test('secrets from env and value-less build args; nothing else, and no unset names', () => {
    const env = {
      TOKEN: 't0k',
      VERSION: '1.2',
      AWS_SECRET_ACCESS_KEY: 'never',
      HOME: '/root',
      PATH: '/usr/bin',
    };
    const raw = { buildArg: ['VERSION', 'FIXED=x', 'UNSET_ARG'], secret: ['id=tok,env=TOKEN'] };
    const o = parseBuildOptions({ context: dir, ...raw }, { cwd: dir, env });
    expect(forwardedEnv(o, raw.buildArg, env)).toEqual({ TOKEN: 't0k', VERSION: '1.2' });
  });
});

describe('writeJailDockerConfig', () => {
  test('inline auths, helpers resolved outside, tag registries asked; the file is 0600', async () => {
    const cfgDir = join(dir, 'cfg');
    const bin = join(dir, 'bin');
    rmSync(cfgDir, { recursive: true, force: true });
    mkdirSync(cfgDir, { recursive: true });
    mkdirSync(bin, { recursive: true });
    // A credential helper that knows one host; "credentials not found" for the rest.
    const helper = join(bin, 'docker-credential-ktltest');
    writeFileSync(
      helper,
      '#!/bin/sh\nread host\nif [ "$host" = "helped.example:5000" ]; then echo \'{"Username":"hu","Secret":"hs"}\'; ' +
        'elif [ "$host" = "tok.example" ]; then echo \'{"Username":"<token>","Secret":"idtok"}\'; ' +
        'else echo "credentials not found in native keychain"; exit 1; fi\n',
    );
    chmodSync(helper, 0o755);
    writeFileSync(
      join(cfgDir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:pw') },
          'inline.example': { auth: b64('iu:ip') },
        },
        credHelpers: { 'helped.example:5000': 'ktltest', 'tok.example': 'ktltest' },
        credsStore: 'ktltest',
      }),
    );
    const env = { DOCKER_CONFIG: cfgDir, PATH: `${bin}:${process.env.PATH}` };
    const o = parseBuildOptions(
      { context: dir, tag: ['pushed.example/app:1', 'inline.example/x'] },
      { cwd: dir, env },
    );
    const warnings: string[] = [];
    const out = join(dir, 'jail-docker');
    const hosts = await writeJailDockerConfig(out, o, env, (l) => warnings.push(l));
    const written = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(Object.keys(written)).toEqual(['auths']); // no credsStore, no credHelpers inside
    expect(written.auths).toEqual({
      'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      'helped.example:5000': { auth: b64('hu:hs') },
      'inline.example': { auth: b64('iu:ip') },
      'tok.example': { identitytoken: 'idtok' },
    });
    expect(hosts.sort()).toEqual(Object.keys(written.auths).sort());
    expect(statSync(join(out, 'config.json')).mode & 0o777).toBe(0o600);
    expect(warnings).toEqual([]);
  });

  test('a broken helper is a warning naming it, the other hosts still get credentials', async () => {
    const cfgDir = join(dir, 'cfg2');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(
      join(cfgDir, 'config.json'),
      JSON.stringify({
        auths: { 'ok.example': { auth: b64('u:p') } },
        credHelpers: { 'broken.example': 'no-such-helper-ktl' },
      }),
    );
    const env = { DOCKER_CONFIG: cfgDir, PATH: process.env.PATH };
    const o = parseBuildOptions({ context: dir }, { cwd: dir, env });
    const warnings: string[] = [];
    const out = join(dir, 'jail-docker2');
    const hosts = await writeJailDockerConfig(out, o, env, (l) => warnings.push(l));
    expect(hosts).toEqual(['ok.example']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/broken\.example: docker-credential-no-such-helper-ktl get/);
  });

  test('no docker config at all: an empty auths file, no warning', async () => {
    const env = { DOCKER_CONFIG: join(dir, 'absent'), PATH: process.env.PATH };
    const o = parseBuildOptions({ context: dir, tag: ['a/b:c'] }, { cwd: dir, env });
    const warnings: string[] = [];
    const out = join(dir, 'jail-docker3');
    expect(await writeJailDockerConfig(out, o, env, (l) => warnings.push(l))).toEqual([]);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toEqual({ auths: {} });
    expect(warnings).toEqual([]);
  });
});

describe('registryHosts', () => {
  test('the registries of --cache-from and --cache-to refs get credentials too', () => {
    const o = parseBuildOptions(
      {
        context: dir,
        cacheFrom: ['type=registry,ref=cache.example:5000/app:c'],
        cacheTo: ['type=registry,ref=push.example/app:c,mode=max'],
      },
      { cwd: dir, env: {} },
    );
    expect(registryHosts(o, { get: async () => undefined, hosts: ['docker.io'] })).toEqual([
      'cache.example:5000',
      'docker.io',
      'push.example',
    ]);
  });
});
