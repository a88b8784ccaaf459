/**
 * TLS to a builder, configured the way the clients people already use configure it:
 *
 * - Docker's environment, for an engine on `tcp://` (docker/cli's rules, checked against its
 *   CLI): TLS when DOCKER_TLS or DOCKER_TLS_VERIFY is set to anything non-empty ("0" and
 *   "false" included); the server is verified only with DOCKER_TLS_VERIFY. The files are
 *   `ca.pem`, `cert.pem` and `key.pem` in DOCKER_CERT_PATH, else in the docker config directory
 *   ($DOCKER_CONFIG, else ~/.docker). `ca.pem` must be readable; a client certificate is sent
 *   only when both `cert.pem` and `key.pem` are there.
 * - buildctl's flags, for any address: `--tlscacert`, `--tlscert`, `--tlskey`, or `--tlsdir`
 *   holding `ca.pem`/`ca.crt`, `cert.pem`/`tls.crt` and `key.pem`/`tls.key` (all three), and
 *   `--tlsservername`. Without a CA file the system's roots verify the server.
 *
 * Failures are E_TLS errors that say which check failed, on which address, with which files,
 * and what to change: a TLS problem is never reported as "unreachable", and never makes ktl try
 * the next builder instead (that would build somewhere the user did not mean to).
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { BuildkitError } from '../errors';
import { nodeTls } from '../lazy-node';

export interface TlsOptions {
  /** PEM contents (not paths). */
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  /** Name to verify the server certificate against, when it differs from the host. */
  readonly serverName?: string | undefined;
  /** Encrypt without verifying the server (Docker's DOCKER_TLS without DOCKER_TLS_VERIFY). */
  readonly insecureSkipVerify?: boolean | undefined;
  /** Where these settings came from, for messages: `DOCKER_CERT_PATH=/certs`, `--tlsdir /x`. */
  readonly origin?: string | undefined;
  /** The files the PEM contents were read from, for messages. */
  readonly files?: TlsFiles | undefined;
}

export interface TlsFiles {
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/** buildctl's TLS flags, as paths (`--tlscacert`, `--tlscert`, `--tlskey`, `--tlsdir`). */
export interface TlsFlags {
  readonly caCert?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly dir?: string | undefined;
  readonly serverName?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

function tlsError(message: string, hint: string, cause?: unknown): BuildkitError {
  return new BuildkitError(message, { code: 'E_TLS', hint, cause });
}

function readPem(path: string, what: string, origin: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw tlsError(
      `TLS settings (${origin}): cannot read the ${what} ${path} (${code})`,
      code === 'ENOENT'
        ? `put the ${what} there, or point the setting at the file that holds it`
        : `make ${path} readable by this user`,
      e,
    );
  }
}

/**
 * Checks what was read is a usable certificate set before any connection: a CA that is no
 * certificate, a key that does not belong to its certificate, or half a pair each fail here,
 * naming the files, instead of as an opaque handshake failure later.
 */
function checked(t: TlsOptions): TlsOptions {
  const origin = t.origin ?? 'TLS settings';
  if ((t.cert === undefined) !== (t.key === undefined)) {
    throw tlsError(
      `TLS settings (${origin}): a client certificate needs both a certificate and its key (got only the ${t.cert === undefined ? 'key' : 'certificate'})`,
      'give both --tlscert and --tlskey, or neither',
    );
  }
  // node:tls takes a CA that holds no certificate without a word (and then trusts nothing).
  for (const [what, pem, file] of [
    ['CA certificate', t.ca, t.files?.ca],
    ['client certificate', t.cert, t.files?.cert],
  ] as const) {
    if (pem !== undefined && !String(pem).includes('-----BEGIN CERTIFICATE-----'))
      throw tlsError(
        `TLS settings (${origin}): the ${what} ${file ?? ''} holds no PEM certificate`,
        'use the PEM file (-----BEGIN CERTIFICATE-----) made for this builder',
      );
  }
  try {
    nodeTls().createSecureContext({
      ...(t.ca === undefined ? {} : { ca: t.ca }),
      ...(t.cert === undefined ? {} : { cert: t.cert, key: t.key }),
    });
  } catch (e) {
    const f = t.files ?? {};
    const msg = (e as Error).message;
    const which = /key values mismatch/i.test(msg)
      ? `the key ${f.key ?? ''} does not belong to the certificate ${f.cert ?? ''}`
      : /no start line|bad base64|PEM/i.test(msg)
        ? `a file is not PEM (${[f.ca, f.cert, f.key].filter(Boolean).join(', ')})`
        : msg;
    throw tlsError(
      `TLS settings (${origin}): ${which.replace(/\s+/g, ' ').trim()}`,
      'use the PEM files made for this builder: a CA certificate, a client certificate and the key it was made for',
      e,
    );
  }
  return t;
}

/** The docker config directory: $DOCKER_CONFIG, else ~/.docker (as the docker CLI). */
export function dockerConfigDir(env: Env): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
}

/**
 * Docker's TLS settings from the environment, for an engine on `tcp://`; undefined when
 * neither DOCKER_TLS nor DOCKER_TLS_VERIFY is set. Throws E_TLS when `ca.pem` cannot be read.
 */
export function dockerEnvTls(env: Env): TlsOptions | undefined {
  const verifyVar = env.DOCKER_TLS_VERIFY;
  if (!verifyVar && !env.DOCKER_TLS) return undefined;
  const dir = env.DOCKER_CERT_PATH || dockerConfigDir(env);
  const asked = verifyVar ? `DOCKER_TLS_VERIFY=${verifyVar}` : `DOCKER_TLS=${env.DOCKER_TLS}`;
  const where = env.DOCKER_CERT_PATH
    ? `DOCKER_CERT_PATH=${dir}`
    : `${dir}, as DOCKER_CERT_PATH is unset`;
  return dockerDirTls(dir, `${asked}, ${where}`, !verifyVar);
}

/** ca.pem (required), cert.pem and key.pem (a client certificate when both are there). */
export function dockerDirTls(dir: string, origin: string, insecureSkipVerify = false): TlsOptions {
  const file = (n: string) => join(dir, n);
  const exists = (p: string) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  const ca = readPem(file('ca.pem'), 'CA certificate', origin);
  const pair = exists(file('cert.pem')) && exists(file('key.pem'));
  return checked({
    ca,
    ...(pair
      ? {
          cert: readPem(file('cert.pem'), 'client certificate', origin),
          key: readPem(file('key.pem'), 'client key', origin),
        }
      : {}),
    ...(insecureSkipVerify ? { insecureSkipVerify: true } : {}),
    origin,
    files: {
      ca: file('ca.pem'),
      ...(pair ? { cert: file('cert.pem'), key: file('key.pem') } : {}),
    },
  });
}

/** TLS from the files named (each must be readable), e.g. a docker context's material. */
export function tlsFromParts(
  files: TlsFiles,
  origin: string,
  insecureSkipVerify = false,
): TlsOptions {
  return checked({
    ...(files.ca ? { ca: readPem(files.ca, 'CA certificate', origin) } : {}),
    ...(files.cert ? { cert: readPem(files.cert, 'client certificate', origin) } : {}),
    ...(files.key ? { key: readPem(files.key, 'client key', origin) } : {}),
    ...(insecureSkipVerify ? { insecureSkipVerify: true } : {}),
    origin,
    files,
  });
}

/** Whether any of buildctl's TLS flags is given. */
export function hasTlsFlags(f: TlsFlags | undefined): f is TlsFlags {
  return (
    f !== undefined &&
    [f.caCert, f.cert, f.key, f.dir, f.serverName].some((v) => v !== undefined && v !== '')
  );
}

/**
 * The contradictions in buildctl's TLS flags, checked before anything is read (E_BAD_OPTION:
 * a usage error). `--tlsservername` alone only renames the server of TLS set up elsewhere.
 */
export function checkTlsFlags(f: TlsFlags): void {
  const bad = (message: string, hint: string) =>
    new BuildkitError(message, { code: 'E_BAD_OPTION', hint });
  if (f.dir && (f.caCert || f.cert || f.key))
    throw bad(
      '--tlsdir cannot be given with --tlscacert, --tlscert or --tlskey',
      'name the directory, or the files, not both (as for buildctl)',
    );
  if (Boolean(f.cert) !== Boolean(f.key))
    throw bad(
      `${f.cert ? '--tlscert' : '--tlskey'} needs ${f.cert ? '--tlskey' : '--tlscert'}`,
      'a client certificate is given as its certificate and its key',
    );
}

/**
 * TLS from buildctl's flags; undefined when only `--tlsservername` (or nothing) is given.
 * `--tlsdir` must hold all three files, as for buildctl.
 */
export function flagsTls(f: TlsFlags): TlsOptions | undefined {
  checkTlsFlags(f);
  const serverName = f.serverName || undefined;
  if (f.dir) {
    const pick = (what: string, names: readonly string[]) => {
      for (const n of names) {
        const p = join(f.dir!, n);
        try {
          if (statSync(p).isFile()) return p;
        } catch {}
      }
      throw tlsError(
        `--tlsdir ${f.dir}: no ${what} (${names.join(' or ')}) there`,
        'the directory holds ca.pem, cert.pem and key.pem (or ca.crt, tls.crt and tls.key), as for buildctl',
      );
    };
    const files = {
      ca: pick('CA certificate', ['ca.pem', 'ca.crt']),
      cert: pick('client certificate', ['cert.pem', 'tls.crt']),
      key: pick('client key', ['key.pem', 'tls.key']),
    };
    const origin = `--tlsdir ${f.dir}`;
    return checked({
      ca: readPem(files.ca, 'CA certificate', origin),
      cert: readPem(files.cert, 'client certificate', origin),
      key: readPem(files.key, 'client key', origin),
      ...(serverName ? { serverName } : {}),
      origin,
      files,
    });
  }
  if (!f.caCert && !f.cert) return undefined;
  const origin = [
    f.caCert ? `--tlscacert ${f.caCert}` : '',
    f.cert ? `--tlscert ${f.cert} --tlskey ${f.key}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return checked({
    ...(f.caCert ? { ca: readPem(f.caCert, 'CA certificate', origin) } : {}),
    ...(f.cert ? { cert: readPem(f.cert, 'client certificate', origin) } : {}),
    ...(f.key ? { key: readPem(f.key, 'client key', origin) } : {}),
    ...(serverName ? { serverName } : {}),
    origin,
    files: {
      ...(f.caCert ? { ca: f.caCert } : {}),
      ...(f.cert ? { cert: f.cert, key: f.key } : {}),
    },
  });
}

/** node:tls connect options for `host` (no SNI for an IP address: RFC 6066 forbids it). */
export function tlsConnectOptions(
  host: string,
  t: TlsOptions,
): import('node:tls').ConnectionOptions {
  const name = t.serverName ?? host;
  return {
    ...(t.ca === undefined ? {} : { ca: t.ca }),
    ...(t.cert === undefined ? {} : { cert: t.cert }),
    ...(t.key === undefined ? {} : { key: t.key }),
    ...(isIP(name) ? {} : { servername: name }),
    rejectUnauthorized: t.insecureSkipVerify !== true,
    // The name checked is the override when there is one; node would check the host.
    checkServerIdentity: (_host, cert) => nodeTls().checkServerIdentity(name, cert),
  };
}

const WRONG_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);
const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_RECORD_LAYER_FAILURE',
  'ERR_SSL_UNEXPECTED_EOF_WHILE_READING',
]);
const NO_CLIENT_CERT = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);

/** How to give TLS to an address of this kind (the Docker spelling for an engine). */
export function tlsHowTo(engine: boolean): string {
  return engine
    ? 'set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem (or give --tlscacert, --tlscert and --tlskey)'
    : 'give --tlscacert, --tlscert and --tlskey (or --tlsdir DIR), as for buildctl';
}

/**
 * The E_TLS error for a failure of the TLS connection to `address` with `t` (undefined when
 * `e` is no TLS failure). `engine`: the address is a Docker engine's (for the hint's spelling).
 */
export function classifyTlsError(
  e: unknown,
  address: string,
  t: TlsOptions,
  engine: boolean,
): BuildkitError | undefined {
  if (BuildkitError.is(e) && e.code === 'E_TLS') return e;
  const err = e as NodeJS.ErrnoException & { reason?: string };
  const code = err?.code ?? '';
  const origin = t.origin ? ` (${t.origin})` : '';
  const f = t.files ?? {};
  const at = `the builder at ${address}`;
  // OpenSSL's messages carry its source file and line; its `reason` is the readable part.
  const why = err?.reason ?? String(err?.message ?? e).split('\n')[0];
  if (WRONG_CA.has(code)) {
    return tlsError(
      `TLS: ${at} presented a certificate that ${f.ca ? `the CA in ${f.ca}` : "none of this system's CAs"} did not sign${origin}: ${why}`,
      f.ca
        ? "use the CA certificate that signed the builder's certificate (for a Docker engine, the file its --tlscacert names)"
        : "give the CA that signed the builder's certificate: --tlscacert FILE, or ca.pem in DOCKER_CERT_PATH",
      e,
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return tlsError(
      `TLS: ${at} presented a certificate for other names${origin}: ${why}`,
      'connect by a name the certificate holds, or give that name with --tlsservername NAME',
      e,
    );
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return tlsError(
      `TLS: ${at} presented a certificate that is not valid now${origin}: ${why}`,
      "renew the builder's certificate (or check this machine's clock)",
      e,
    );
  }
  if (NO_CLIENT_CERT.has(code) && (t.cert === undefined || code.includes('CERTIFICATE_REQUIRED'))) {
    return tlsError(
      `TLS: ${at} requires a client certificate and ktl has none to give (${t.cert !== undefined ? 'the server did not take the one offered' : t.origin?.startsWith('--') ? 'no --tlscert and --tlskey were given' : t.origin ? `${t.origin}: no cert.pem and key.pem there` : 'none was given'}; the server said: ${why})`,
      t.origin?.startsWith('docker context')
        ? 'give the context the client certificate and key the engine trusts (`docker context update NAME --docker "host=...,ca=FILE,cert=FILE,key=FILE"`), or give --tlscert and --tlskey'
        : engine
          ? 'put the client certificate and key the engine trusts in DOCKER_CERT_PATH as cert.pem and key.pem, or give --tlscert and --tlskey'
          : 'give the client certificate and key with --tlscert and --tlskey (or --tlsdir DIR)',
      e,
    );
  }
  if (CLIENT_CERT_REFUSED.has(code) || NO_CLIENT_CERT.has(code)) {
    return tlsError(
      `TLS: ${at} refused the client certificate ${f.cert ?? ''}${origin}: the server said: ${why}`,
      'use a client certificate signed by a CA the builder trusts (for a Docker engine, its --tlscacert)',
      e,
    );
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
    return tlsError(
      `TLS: ${at} speaks TLS but not ${engine ? 'HTTP/1.1' : "gRPC's HTTP/2"} (it refused the protocol ktl offered: ${why})`,
      engine
        ? 'this is no Docker engine API; if it is buildkitd, name it tcp://HOST:PORT'
        : `an HTTP/1.1 server there is likely a Docker engine: use docker://${address}`,
      e,
    );
  }
  if (NOT_TLS.has(code)) {
    return tlsError(
      `TLS: ${at} does not speak TLS: the handshake was answered with something else (${why})${origin}`,
      "use the builder's TLS port, or drop the TLS settings for this address",
      e,
    );
  }
  return undefined;
}

/** The E_TLS error for a plain connection to an address that speaks TLS. */
export function plainToTlsError(address: string, engine: boolean, evidence: string): BuildkitError {
  return tlsError(
    `TLS: the builder at ${address} speaks TLS and ktl connected without it (${evidence})`,
    tlsHowTo(engine),
  );
}

/**
 * A TLS stream as a plain duplex of its cleartext. node:http2's server takes a TLSSocket whose
 * ALPN is `http/1.1` (an engine's API is HTTP/1.1 until the upgrade) for an HTTP/1 client and
 * answers it with a text 403, which the daemon reads as an HTTP/2 frame ("frame too large"):
 * past the upgrade, the stream must not look like TLS to it.
 */
export function cleartextStream(sock: Duplex): Duplex {
  if (!(sock as { encrypted?: boolean }).encrypted) return sock;
  const d = new Duplex({
    read() {
      sock.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      sock.write(chunk, cb);
    },
    final(cb) {
      sock.end(cb);
    },
    destroy(err, cb) {
      sock.destroy(err ?? undefined);
      cb(err);
    },
  });
  sock.on('data', (c: Buffer) => {
    if (!d.push(c)) sock.pause();
  });
  sock.once('end', () => d.push(null));
  sock.once('error', (e) => d.destroy(e));
  sock.once('close', () => d.destroy());
  return d;
}
