/**
 * An HTTP/2 (gRPC) forwarder that terminates the jailed client's connection and opens its own
 * to the builder, stream by stream, so that every call is seen before it is forwarded: only
 * allow-listed methods pass, and a Solve request is decoded and checked (entitlements, network
 * mode, image names) before a single byte of it reaches the builder.
 */
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { SolveRequest } from '../gen/moby/buildkit/v1/control';

export const CONTROL = '/moby.buildkit.v1.Control/';
const SOLVE = `${CONTROL}Solve`;

/** What an untrusted build client needs: build, watch, ask, and (buildkitd) the session. */
export const DEFAULT_ALLOWED_METHODS = ['Solve', 'Status', 'Info', 'ListWorkers', 'Session'].map(
  (m) => CONTROL + m,
);

const MAX_SOLVE_REQUEST = 64 * 1024 * 1024;
const HOP_BY_HOP = new Set([
  'connection',
  'upgrade',
  'http2-settings',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'host',
]);

export interface GrpcFilterOptions {
  allowMethods: ReadonlySet<string>;
  /** Returns why a Solve must be refused, or undefined to let it through unchanged. */
  checkSolve?: (req: SolveRequest) => string | undefined;
  log: (line: string) => void;
}

/**
 * A request's headers from its raw lines: a header sent several times stays several lines.
 * node:http2 joins repeats into one "a, b" value in `headers`, and the session's
 * `X-Docker-Expose-Session-Grpc-Method` lines (one per method the client serves) then match
 * nothing on the daemon: it finds no FileSync ("no local sources enabled").
 */
function forwardableRaw(raw: readonly string[]): http2.OutgoingHttpHeaders {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (k.startsWith(':') || HOP_BY_HOP.has(k)) continue;
    const values = out[k] ?? [];
    values.push(raw[i + 1]!);
    out[k] = values;
  }
  return out;
}

function forwardable(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(':') || HOP_BY_HOP.has(k) || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** gRPC's grpc-message encoding: percent-encode only '%' and bytes outside printable ASCII. */
export function grpcMessage(message: string): string {
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    out +=
      b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Ends a stream with a trailers-only gRPC error (status 7 = PERMISSION_DENIED). */
export function grpcError(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_CANCEL);
    return;
  }
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': grpcMessage(message),
    },
    { endStream: true },
  );
}

function readAll(stream: http2.ServerHttp2Stream, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    stream.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) reject(new Error(`request larger than ${limit} bytes`));
      else parts.push(d);
    });
    stream.once('end', () => resolve(Buffer.concat(parts)));
    stream.once('error', reject);
  });
}

/** Decodes a unary gRPC request body (one uncompressed length-prefixed message). */
export function decodeUnary(body: Buffer): Uint8Array {
  if (body.length < 5) throw new Error('short gRPC message');
  if (body[0] !== 0) throw new Error('compressed gRPC messages are not accepted');
  const len = body.readUInt32BE(1);
  if (len !== body.length - 5) throw new Error('gRPC body is not exactly one message');
  return body.subarray(5);
}

function pipeResponse(up: http2.ClientHttp2Stream, down: http2.ServerHttp2Stream): void {
  let trailers: http2.OutgoingHttpHeaders | undefined;
  up.on('response', (headers, flags) => {
    if (down.destroyed) return;
    // Once only: a grpcError already answered (an upstream error) leaves nothing to forward.
    if (down.headersSent) return;
    const ended = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    down.respond(
      { ':status': headers[':status'] ?? 200, ...forwardable(headers) },
      ended ? { endStream: true } : { waitForTrailers: true },
    );
  });
  down.on('wantTrailers', () =>
    down.sendTrailers(
      trailers ?? { 'grpc-status': '13', 'grpc-message': 'builder sent no trailers' },
    ),
  );
  up.on('trailers', (t) => {
    trailers = forwardable(t);
  });
  up.on('data', (d: Buffer) => {
    if (!down.destroyed) down.write(d);
  });
  up.on('end', () => {
    if (!down.destroyed && down.headersSent && !down.writableEnded) down.end();
  });
  up.on('error', (e) => grpcError(down, 14, `builder: ${e.message}`));
  down.on('close', () => {
    if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
  });
}

/**
 * Serves HTTP/2 on `downstream` (already past any HTTP/1.1 upgrade) and forwards allowed
 * calls over `upstream`. Either side closing closes the other.
 */
export function serveFiltered(
  downstream: net.Socket,
  upstream: http2.ClientHttp2Session,
  opts: GrpcFilterOptions,
): void {
  const server = http2.createServer();
  server.on(
    'stream',
    (
      stream: http2.ServerHttp2Stream,
      headers: http2.IncomingHttpHeaders,
      _flags: number,
      rawHeaders: string[],
    ) => {
      const path = String(headers[':path'] ?? '');
      if (headers[':method'] !== 'POST' || !opts.allowMethods.has(path)) {
        opts.log(
          `refused ${headers[':method']} ${path}: not part of the BuildKit API the sandbox may use`,
        );
        grpcError(stream, 7, `ktl sandbox gateway: ${path} is not allowed from inside the sandbox`);
        return;
      }
      const up = upstream.request(
        { ':method': 'POST', ':path': path, ...forwardableRaw(rawHeaders) },
        { endStream: false },
      );
      pipeResponse(up, stream);
      if (path !== SOLVE) {
        stream.pipe(up);
        return;
      }
      readAll(stream, MAX_SOLVE_REQUEST)
        .then((body) => {
          const why = opts.checkSolve?.(SolveRequest.decode(decodeUnary(body)));
          if (why) {
            opts.log(`refused Solve: ${why}`);
            up.close(http2.constants.NGHTTP2_CANCEL);
            grpcError(stream, 7, `ktl sandbox gateway: ${why}`);
            return;
          }
          up.end(body);
        })
        .catch((e: Error) => {
          opts.log(`refused Solve: ${e.message}`);
          up.close(http2.constants.NGHTTP2_CANCEL);
          grpcError(stream, 3, `ktl sandbox gateway: unreadable Solve request: ${e.message}`);
        });
    },
  );
  server.on('session', (session) => {
    session.on('close', () => upstream.close());
    session.on('error', () => upstream.destroy());
    upstream.on('close', () => session.destroy());
  });
  upstream.on('error', (e) => opts.log(`builder connection failed: ${e.message}`));
  server.emit('connection', downstream);
  downstream.resume();
}
