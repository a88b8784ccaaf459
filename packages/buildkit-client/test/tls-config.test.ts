/**
 * TLS settings read from files before any connection (no network): buildctl's --tlsdir names
 * (ca.pem/cert.pem/key.pem or ca.crt/tls.crt/tls.key, all three), Docker's directory rules, and
 * the files that cannot be used, each refused naming the file. Certificates are made here
 * with openssl.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { BuildkitError, candidates, dockerEnvTls, flagsTls } from '../src/index';

const openssl = spawnSync('openssl', ['version']).status === 0;
const sslTest = openssl ? test : test.skip;
const why = openssl ? '' : ' [skipped: no openssl to make the certificates]';
const dir = mkdtempSync(join(tmpdir(), 'ktl-tlscfg-'));

function ssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

// Three unrelated self-signed certificates (P-256) and their keys: NAME.pem and NAME.key.
beforeAll(() => {
  if (!openssl) return;
  for (const n of ['ca', 'client', 'other']) {
    ssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${n}`,
      '-keyout',
      `${n}.key`,
      '-out',
      `${n}.pem`,
    );
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function certDir(name: string, files: Record<string, string>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [to, from] of Object.entries(files)) copyFileSync(join(dir, from), join(d, to));
  return d;
}

const refusal = (f: () => unknown): BuildkitError => {
  try {
    f();
  } catch (e) {
    if (BuildkitError.is(e)) return e;
    throw e;
  }
  throw new Error('not refused');
};

describe('buildctl --tlsdir', () => {
  sslTest(`takes ca.pem, cert.pem, key.pem or ca.crt, tls.crt, tls.key${why}`, () => {
    const pem = certDir('pem', {
      'ca.pem': 'ca.pem',
      'cert.pem': 'client.pem',
      'key.pem': 'client.key',
    });
    expect(flagsTls({ dir: pem })?.files).toEqual({
      ca: join(pem, 'ca.pem'),
      cert: join(pem, 'cert.pem'),
      key: join(pem, 'key.pem'),
    });
    const crt = certDir('crt', {
      'ca.crt': 'ca.pem',
      'tls.crt': 'client.pem',
      'tls.key': 'client.key',
    });
    const t = flagsTls({ dir: crt, serverName: 'b.test' });
    expect([t?.files?.cert, t?.serverName, t?.origin]).toEqual([
      join(crt, 'tls.crt'),
      'b.test',
      `--tlsdir ${crt}`,
    ]);
  });

  sslTest(
    `needs all three files, and refuses a key of another certificate or a file that is not PEM${why}`,
    () => {
      const two = certDir('two', { 'ca.pem': 'ca.pem', 'cert.pem': 'client.pem' });
      const missing = refusal(() => flagsTls({ dir: two }));
      expect([missing.code, missing.message]).toEqual([
        'E_TLS',
        `--tlsdir ${two}: no client key (key.pem or tls.key) there`,
      ]);
      const mismatch = certDir('mismatch', {
        'ca.pem': 'ca.pem',
        'cert.pem': 'client.pem',
        'key.pem': 'other.key',
      });
      expect(refusal(() => flagsTls({ dir: mismatch })).message).toBe(
        `TLS settings (--tlsdir ${mismatch}): the key ${join(mismatch, 'key.pem')} does not belong to the certificate ${join(mismatch, 'cert.pem')}`,
      );
      const text = join(dir, 'not-pem.txt');
      writeFileSync(text, 'hello\n');
      const notPem = refusal(() => flagsTls({ caCert: text }));
      expect([notPem.code, notPem.message]).toEqual([
        'E_TLS',
        `TLS settings (--tlscacert ${text}): the CA certificate ${text} holds no PEM certificate`,
      ]);
    },
  );

  test('--tlsdir with --tlscacert, or a certificate without its key, is a usage error', () => {
    expect(refusal(() => flagsTls({ dir: '/d', caCert: '/c' })).code).toBe('E_BAD_OPTION');
    expect(refusal(() => flagsTls({ cert: '/c' })).message).toBe('--tlscert needs --tlskey');
  });
});

describe("Docker's TLS variables", () => {
  sslTest(
    `a client certificate is used only when both cert.pem and key.pem are there${why}`,
    () => {
      const half = certDir('half', { 'ca.pem': 'ca.pem', 'cert.pem': 'client.pem' });
      const t = dockerEnvTls({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: half });
      expect([t?.cert, t?.key, t?.insecureSkipVerify, t?.origin]).toEqual([
        undefined,
        undefined,
        undefined,
        `DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH=${half}`,
      ]);
      expect(dockerEnvTls({ DOCKER_TLS: '1', DOCKER_CERT_PATH: half })?.insecureSkipVerify).toBe(
        true,
      );
      expect(dockerEnvTls({ DOCKER_CERT_PATH: half })).toBeUndefined();
    },
  );

  sslTest(`apply to DOCKER_HOST on tcp:// only; a unix DOCKER_HOST needs no ca.pem${why}`, () => {
    const none = join(dir, 'no-such-dir');
    const env = { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: none };
    const [unix] = candidates({ env: { ...env, DOCKER_HOST: 'unix:///x.sock' }, defaults: [] });
    expect([unix?.tls, unix?.tlsError]).toEqual([undefined, undefined]);
    const [tcp] = candidates({
      env: { ...env, DOCKER_HOST: 'tcp://127.0.0.1:2376' },
      defaults: [],
    });
    expect(tcp?.tlsError?.message).toBe(
      `TLS settings (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH=${none}): cannot read the CA certificate ${none}/ca.pem (ENOENT)`,
    );
  });
});
