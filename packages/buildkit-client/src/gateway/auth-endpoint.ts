/**
 * Registry credentials for a sandboxed build client, answered from outside the sandbox. The
 * daemon asks the client's session for credentials (moby.filesync.v1.Auth); the jailed client
 * relays each such call, on the gateway's own socket, to the ktl outside, which answers it
 * from the user's credential store (its helpers run out there, the token fetches too). No
 * credential is ever written where the jail can read it, and only what the daemon asks is
 * answered.
 *
 * The endpoint is ktl's, not BuildKit's: `POST /ktl/auth/<Method> HTTP/1.1` with a
 * Content-Length and the request's protobuf bytes, one call per connection; answered `200`
 * with the response's protobuf bytes, or an error status with the gRPC status in
 * `X-Ktl-Grpc-Status` and `{"message": ...}`, which the client hands the daemon as that call's
 * status.
 */
import * as net from 'node:net';
import { type AuthAnswerer, type AuthMethod, isAuthMethod } from '../session/auth-service';
import {
  GRPC_CANCELLED,
  GRPC_INVALID_ARGUMENT,
  GRPC_UNAVAILABLE,
  GRPC_UNIMPLEMENTED,
  GRPC_UNKNOWN,
  GrpcStatusError,
} from '../session/grpc-server';
import { header, type RequestHead, readRequestHead } from './http-head';

export const AUTH_ENDPOINT = '/ktl/auth/';
const PREFIX = Buffer.from(`POST ${AUTH_ENDPOINT}`, 'latin1');
/** Auth requests are a host name, a realm, scopes, a salt: small. */
const MAX_BODY = 64 * 1024;
const MAX_RESPONSE = 1024 * 1024;
const STATUS_HEADER = 'x-ktl-grpc-status';
const GRPC_DEADLINE_EXCEEDED = 4;
const BODY_TIMEOUT_MS = 10_000;
/**
 * How long the jailed client waits for an answer. Longer than a credential helper may take
 * (loadDockerConfig gives each 30 s), so a slow helper's own error is what the daemon sees.
 */
export const AUTH_RELAY_TIMEOUT_MS = 45_000;

/**
 * Whether a connection starts with an Auth call. Reads only until that is known; what was read
 * is put back for whoever handles the connection. `closed`: the peer went away first.
 */
export function sniffAuthCall(
  sock: net.Socket,
  timeoutMs = 10_000,
): Promise<'auth' | 'other' | 'closed'> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (kind: 'auth' | 'other' | 'closed') => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onEnd);
      sock.pause();
      if (kind === 'closed') sock.destroy();
      else if (buf.length > 0) sock.unshift(buf);
      resolve(kind);
    };
    // Nothing sent in time: the connection's own handling decides (it has its own limits).
    const timer = setTimeout(() => done('other'), timeoutMs);
    const onEnd = () => done('closed');
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFIX.length);
      if (!buf.subarray(0, n).equals(PREFIX.subarray(0, n))) return done('other');
      if (n === PREFIX.length) done('auth');
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', onEnd);
    sock.resume();
  });
}

function answerHttp(
  sock: net.Socket,
  status: number,
  reason: string,
  body: Uint8Array | { code: number; message: string },
): void {
  const isError = !(body instanceof Uint8Array);
  const bytes = isError ? Buffer.from(JSON.stringify({ message: body.message })) : body;
  const head =
    `HTTP/1.1 ${status} ${reason}\r\n` +
    `Content-Type: ${isError ? 'application/json' : 'application/x-protobuf'}\r\n` +
    (isError ? `X-Ktl-Grpc-Status: ${body.code}\r\n` : '') +
    `Content-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`;
  sock.end(Buffer.concat([Buffer.from(head, 'latin1'), bytes]));
}

function readBody(sock: net.Socket, head: RequestHead, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = head.rest;
    const timer = setTimeout(
      () => done(new Error(`request body incomplete after ${BODY_TIMEOUT_MS} ms`)),
      BODY_TIMEOUT_MS,
    );
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', done);
      sock.pause();
      if (err) reject(err);
      else resolve(buf.subarray(0, length));
    };
    const onEnd = () => done(new Error('connection closed before the request body'));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > length) done(new Error('more bytes than Content-Length'));
      else if (buf.length === length) done();
    };
    if (buf.length > length) return done(new Error('more bytes than Content-Length'));
    if (buf.length === length) return done();
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', done);
    sock.resume();
  });
}

/**
 * Serves one Auth call on a connection sniffAuthCall said starts with one. `log` gets a line
 * for each refusal (`refused ...`); the answerer's own failures go back to the caller only.
 */
export async function serveAuthCall(
  sock: net.Socket,
  answerer: AuthAnswerer,
  log: (line: string) => void,
): Promise<void> {
  const refuse = (status: number, reason: string, code: number, message: string) => {
    log(`refused ${message}`);
    answerHttp(sock, status, reason, { code, message: `ktl sandbox gateway: ${message}` });
  };
  let head: RequestHead;
  try {
    head = await readRequestHead(sock);
  } catch (e) {
    return refuse(
      400,
      'Bad Request',
      GRPC_INVALID_ARGUMENT,
      `an Auth call: ${(e as Error).message}`,
    );
  }
  const what = `${head.method} ${head.target.slice(0, 200)}`;
  const method = head.target.slice(AUTH_ENDPOINT.length);
  if (head.method !== 'POST' || !head.target.startsWith(AUTH_ENDPOINT) || !isAuthMethod(method))
    return refuse(
      404,
      'Not Found',
      GRPC_UNIMPLEMENTED,
      `${what}: not a method of the Auth service`,
    );
  const lengthText = header(head, 'content-length') ?? '';
  if (header(head, 'transfer-encoding') !== undefined || !/^[0-9]{1,6}$/.test(lengthText))
    return refuse(400, 'Bad Request', GRPC_INVALID_ARGUMENT, `${what}: needs a Content-Length`);
  const length = Number(lengthText);
  if (length > MAX_BODY)
    return refuse(
      413,
      'Payload Too Large',
      GRPC_INVALID_ARGUMENT,
      `${what}: body over ${MAX_BODY} bytes`,
    );
  let body: Buffer;
  try {
    body = await readBody(sock, head, length);
  } catch (e) {
    return refuse(400, 'Bad Request', GRPC_INVALID_ARGUMENT, `${what}: ${(e as Error).message}`);
  }
  // The caller gave up (its timeout, or the daemon cancelled): so does the answer. Read on
  // (and drop anything more) so its going away is seen.
  const gone = new AbortController();
  sock.once('close', () => gone.abort());
  sock.resume();
  try {
    const answer = await answerer.answer(method, body, gone.signal);
    if (!sock.destroyed) answerHttp(sock, 200, 'OK', answer);
  } catch (e) {
    if (sock.destroyed) return;
    const code = e instanceof GrpcStatusError ? e.code : GRPC_UNKNOWN;
    const message = e instanceof Error ? e.message : String(e);
    answerHttp(sock, code === GRPC_UNIMPLEMENTED ? 501 : 502, 'Auth Failed', { code, message });
  }
}

function parseResponse(raw: Buffer): Uint8Array {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('no complete response');
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] ([0-9]{3}) /.exec(`${lines[0] ?? ''} `);
  if (!m) throw new Error(`malformed status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  const body = raw.subarray(end + 4);
  const length = Number(headers.get('content-length') ?? Number.NaN);
  if (!Number.isInteger(length) || body.length !== length)
    throw new Error(
      `response body of ${body.length} bytes, Content-Length ${headers.get('content-length') ?? 'absent'}`,
    );
  if (m[1] === '200') return body;
  const code = Number(headers.get(STATUS_HEADER));
  let message = body.toString('utf8');
  try {
    const j = JSON.parse(message) as { message?: unknown };
    if (typeof j.message === 'string') message = j.message;
  } catch {
    // not JSON: the text is the message
  }
  throw new GrpcStatusError(
    Number.isInteger(code) && code > 0 && code <= 16 ? code : GRPC_UNKNOWN,
    message || `HTTP ${m[1]}`,
  );
}

function relayCall(
  socketPath: string,
  method: AuthMethod,
  request: Uint8Array,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      f();
    };
    const fail = (code: number, why: string) =>
      settle(() =>
        reject(
          new GrpcStatusError(
            code,
            `registry credentials from the ktl outside the sandbox: ${why}`,
          ),
        ),
      );
    const timer = setTimeout(
      () => fail(GRPC_DEADLINE_EXCEEDED, `no answer to ${method} within ${timeoutMs} ms`),
      timeoutMs,
    );
    const onAbort = () => fail(GRPC_CANCELLED, `${method} cancelled`);
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (e) => fail(GRPC_UNAVAILABLE, `${method}: ${e.message}`));
    sock.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_RESPONSE) return fail(GRPC_UNAVAILABLE, `${method}: answer too large`);
      chunks.push(c);
    });
    sock.on('end', () => {
      try {
        const answer = parseResponse(Buffer.concat(chunks));
        settle(() => resolve(answer));
      } catch (e) {
        if (e instanceof GrpcStatusError) return settle(() => reject(e));
        fail(GRPC_UNAVAILABLE, `${method}: ${(e as Error).message}`);
      }
    });
    sock.on('close', () =>
      fail(GRPC_UNAVAILABLE, `${method}: connection closed without an answer`),
    );
    if (signal?.aborted) return onAbort();
    sock.write(
      Buffer.concat([
        Buffer.from(
          `POST ${AUTH_ENDPOINT}${method} HTTP/1.1\r\nHost: ktl\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${request.length}\r\nConnection: close\r\n\r\n`,
          'latin1',
        ),
        request,
      ]),
    );
  });
}

export interface AuthRelayOptions {
  /** Per call (default AUTH_RELAY_TIMEOUT_MS); then the daemon gets DEADLINE_EXCEEDED. */
  readonly timeoutMs?: number | undefined;
}

/**
 * The jailed client's answerer: every Auth call goes to the gateway at `socketPath`. A failure
 * to get an answer (no gateway, a timeout) is that call's error status, for the daemon to act
 * on as it would on any failed credential lookup.
 */
export function authRelay(socketPath: string, opts: AuthRelayOptions = {}): AuthAnswerer {
  const timeoutMs = opts.timeoutMs ?? AUTH_RELAY_TIMEOUT_MS;
  return {
    answer: (method, request, signal) => relayCall(socketPath, method, request, timeoutMs, signal),
  };
}
