/**
 * What crosses into the jail besides binds: only the env vars the command line names; registry
 * credentials do not cross at all, the outer ktl answers the daemon's questions about them.
 */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import {
  CredentialsRequest,
  CredentialsResponse,
} from '../../buildkit-client/src/gen/moby/filesync/v1/auth';
import { parseBuildOptions } from '../src/build/options';
import { forwardedEnv } from '../src/sandbox/forward-env';
import { askedLine, outerAuthAnswerer } from '../src/sandbox/handover';

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

describe('outerAuthAnswerer', () => {
  const ask = async (a: ReturnType<typeof outerAuthAnswerer>, host: string) =>
    CredentialsResponse.decode(
      await a.answer('Credentials', CredentialsRequest.encode({ Host: host }).finish()),
    );

  test('answers only the hosts asked, helpers run out here, nothing written; one line per host', async () => {
    const cfgDir = join(dir, 'cfg');
    const bin = join(dir, 'bin');
    const calls = join(dir, 'helper-calls');
    rmSync(cfgDir, { recursive: true, force: true });
    mkdirSync(cfgDir, { recursive: true });
    mkdirSync(bin, { recursive: true });
    // A credential helper that knows two hosts and notes every host it is asked about.
    const helper = join(bin, 'docker-credential-ktltest');
    writeFileSync(
      helper,
      `#!/bin/sh\nread host\necho "$host" >> ${JSON.stringify(calls)}\n` +
        'if [ "$host" = "helped.example:5000" ]; then echo \'{"Username":"hu","Secret":"hs"}\'; ' +
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
      }),
    );
    const before = readdirSync(cfgDir);
    const env = { DOCKER_CONFIG: cfgDir, PATH: `${bin}:${process.env.PATH}` };
    const warnings: string[] = [];
    const lines: string[] = [];
    const a = outerAuthAnswerer(env, {
      warn: (l) => warnings.push(l),
      onAsked: (h, g, e) => lines.push(askedLine(h, g, e)),
    });
    expect(await ask(a, 'helped.example:5000')).toEqual({ Username: 'hu', Secret: 'hs' });
    expect(await ask(a, 'helped.example:5000')).toEqual({ Username: 'hu', Secret: 'hs' });
    expect(await ask(a, 'tok.example')).toEqual({ Username: '', Secret: 'idtok' });
    expect(await ask(a, 'registry-1.docker.io')).toEqual({ Username: 'hub', Secret: 'pw' });
    expect(await ask(a, 'nothing.example')).toEqual({ Username: '', Secret: '' });
    // inline.example was never asked about: never looked up, never told.
    expect(lines).toEqual([
      '[sandbox] registry credentials asked for helped.example:5000: given',
      '[sandbox] registry credentials asked for tok.example: given',
      '[sandbox] registry credentials asked for registry-1.docker.io: given',
      '[sandbox] registry credentials asked for nothing.example: none',
    ]);
    expect(readFileSync(calls, 'utf8').split('\n').filter(Boolean)).toEqual([
      'helped.example:5000',
      'helped.example:5000',
      'tok.example',
    ]);
    expect(readdirSync(cfgDir)).toEqual(before);
    expect(warnings).toEqual([]);
    // The rest of the Auth service is what the session answers on the host: UNIMPLEMENTED.
    await expect(a.answer('FetchToken', new Uint8Array())).rejects.toMatchObject({ code: 12 });
  });

  test("a broken helper is that call's error (the daemon sees it), and the line says none", async () => {
    const cfgDir = join(dir, 'cfg2');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(
      join(cfgDir, 'config.json'),
      JSON.stringify({
        auths: { 'ok.example': { auth: b64('u:p') } },
        credHelpers: { 'broken.example': 'no-such-helper-ktl' },
      }),
    );
    const lines: string[] = [];
    const a = outerAuthAnswerer(
      { DOCKER_CONFIG: cfgDir, PATH: process.env.PATH },
      { warn: () => {}, onAsked: (h, g, e) => lines.push(askedLine(h, g, e)) },
    );
    await expect(ask(a, 'broken.example')).rejects.toThrow(
      /docker-credential-no-such-helper-ktl get broken\.example/,
    );
    expect(await ask(a, 'ok.example')).toEqual({ Username: 'u', Secret: 'p' });
    expect(lines[0]).toMatch(
      /^\[sandbox\] registry credentials asked for broken\.example: none \(docker-credential-no-such-helper-ktl get broken\.example: not found on PATH\)$/,
    );
    expect(lines[1]).toBe('[sandbox] registry credentials asked for ok.example: given');
  });

  test('the docker config is read on the first call: an unreadable one is one warning then, and no credentials', async () => {
    const cfgDir = join(dir, 'cfg3');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(join(cfgDir, 'config.json'), '{not json');
    const warnings: string[] = [];
    const a = outerAuthAnswerer({ DOCKER_CONFIG: cfgDir }, { warn: (l) => warnings.push(l) });
    expect(warnings).toEqual([]);
    expect(await ask(a, 'a.example')).toEqual({ Username: '', Secret: '' });
    expect(await ask(a, 'b.example')).toEqual({ Username: '', Secret: '' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^WARNING: cannot read .*config\.json.*; registry requests go unauthenticated$/,
    );
  });
});
