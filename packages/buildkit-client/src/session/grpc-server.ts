/**
 * A minimal gRPC server on node:http2, for the session. The daemon is the HTTP/2 client on a
 * connection we did not accept (an upgraded engine socket or a Control.Session tunnel), so we
 * hand that byte stream to an http2 server ourselves.
 *
 * Why not @grpc/grpc-js's Server: it joins repeated request headers into one comma-separated
 * string, which corrupts `.dockerignore` patterns containing ", " (sent one pattern per header);
 * `rawHeaders` here keeps each value apart.
 */
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';

export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export const GRPC_OK = 0;
export const GRPC_CANCELLED = 1;
export const GRPC_UNKNOWN = 2;
export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_NOT_FOUND = 5;
export const GRPC_ALREADY_EXISTS = 6;
export const GRPC_PERMISSION_DENIED = 7;
export const GRPC_FAILED_PRECONDITION = 9;
export const GRPC_OUT_OF_RANGE = 11;
export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_INTERNAL = 13;
export const GRPC_UNAVAILABLE = 14;

export interface GrpcCall {
  /** `/package.Service/Method`. */
  readonly method: string;
  /**
   * All values of a request header, in order. Values sent with `<name>-encoded: 1` are
   * URL-decoded (the daemon does that for non-ASCII paths and patterns).
   */
  metadata(name: string): string[];
  /** Request messages as they arrive. */
  messages(): AsyncGenerator<Buffer>;
  /** Sends one response message; resolves when the stream can take more. */
  send(msg: Uint8Array): Promise<void>;
  /**
   * Writes bytes that already hold whole length-prefixed gRPC messages (several at once, to
   * save per-message stream writes); the buffer must not be changed afterwards.
   */
  sendFramed(bytes: Uint8Array): Promise<void>;
  /** Aborted when the daemon cancels the call or the connection drops. */
  readonly signal: AbortSignal;
}

export type Handler = (call: GrpcCall) => Promise<void>;

function percentEncode(s: string): string {
  return Buffer.from(s, 'utf8').reduce(
    (out, b) =>
      out +
      (b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`),
    '',
  );
}

/** Go's url.QueryUnescape: `+` is a space. */
function queryUnescape(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/**
 * Request messages. Not `for await (… of stream)`: leaving that loop early destroys the stream,
 * which the daemon sees as RST_STREAM CANCEL before it has read our last message and trailers.
 * Here an early exit only stops listening, and further input is drained and dropped.
 */
async function* readMessages(stream: http2.ServerHttp2Stream): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingLen = 0;
  /** Length (header included) of the message being received, once its header is in. */
  let need: number | undefined;
  const chunks: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const onData = (c: Buffer) => {
    chunks.push(c);
    if (chunks.length > 64) stream.pause();
    wake?.();
  };
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  // A reset stream (RST_STREAM from the daemon) can still end its readable side: that is a
  // cancellation, not a complete request, and must not look like one to the handler.
  const onAborted = () => {
    failure ??= new GrpcStatusError(GRPC_CANCELLED, 'call cancelled by the daemon');
    wake?.();
  };
  const onClose = () => {
    if (!ended) failure ??= new GrpcStatusError(GRPC_CANCELLED, 'call cancelled by the daemon');
    wake?.();
  };
  stream.on('data', onData);
  stream.once('end', onEnd);
  stream.once('close', onClose);
  stream.once('aborted', onAborted);
  try {
    for (;;) {
      const c = chunks.shift();
      if (c === undefined) {
        if (failure) throw failure;
        if (ended) {
          // 'end' and a reset can race: let the reset be seen before calling the input whole.
          await new Promise<void>((r) => setImmediate(r));
          if (failure || stream.aborted || (stream.rstCode ?? 0) !== 0) {
            throw failure ?? new GrpcStatusError(GRPC_CANCELLED, 'call cancelled by the daemon');
          }
          break;
        }
        stream.resume();
        await new Promise<void>((r) => {
          wake = r;
        });
        continue;
      }
      // Chunks are kept apart until a whole message is there and joined once: joining on every
      // chunk copies a large message (a 1 MiB cache blob write in 16 KiB frames) over and over.
      pending.push(c);
      pendingLen += c.length;
      for (;;) {
        if (need === undefined) {
          if (pendingLen < 5) break;
          if (pending[0]!.length < 5) pending = [Buffer.concat(pending, pendingLen)];
          const head = pending[0]!;
          if (head[0] !== 0) {
            throw new GrpcStatusError(GRPC_UNIMPLEMENTED, 'compressed messages are not supported');
          }
          need = 5 + head.readUInt32BE(1);
        }
        if (pendingLen < need) break;
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
        const msg = all.subarray(5, need);
        const rest = all.subarray(need);
        pending = rest.length > 0 ? [rest] : [];
        pendingLen = rest.length;
        need = undefined;
        yield msg;
      }
    }
    if (pendingLen > 0) throw new GrpcStatusError(GRPC_INTERNAL, 'truncated gRPC message');
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('close', onClose);
    stream.off('aborted', onAborted);
    if (!ended) stream.resume(); // discard the rest without resetting the stream
  }
}

function makeCall(stream: http2.ServerHttp2Stream, method: string, rawHeaders: string[]): GrpcCall {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const k = rawHeaders[i]!.toLowerCase();
    const list = values.get(k) ?? [];
    list.push(rawHeaders[i + 1]!);
    values.set(k, list);
  }
  const ac = new AbortController();
  stream.once('close', () => ac.abort());
  const write = (bytes: Uint8Array): Promise<void> => {
    if (stream.write(bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('close', closed);
        resolve();
      };
      const closed = () => {
        stream.off('drain', done);
        reject(new GrpcStatusError(GRPC_CANCELLED, 'stream closed'));
      };
      stream.once('drain', done);
      stream.once('close', closed);
    });
  };
  return {
    method,
    metadata(name) {
      const k = name.toLowerCase();
      const v = values.get(k) ?? [];
      const enc = values.get(`${k}-encoded`)?.[0];
      return enc === '1' || enc === 'true' ? v.map(queryUnescape) : [...v];
    },
    messages: () => readMessages(stream),
    send(msg) {
      const frame = Buffer.allocUnsafe(5 + msg.length);
      frame[0] = 0;
      frame.writeUInt32BE(msg.length, 1);
      frame.set(msg, 5);
      return write(frame);
    },
    sendFramed: write,
    signal: ac.signal,
  };
}

/**
 * No `date` header on responses: gRPC has no use for it, and formatting the first one costs
 * ~20 ms in a jail without /etc/localtime (the time zone lookup behind Date's first string).
 * node:http2 honours `sendDate` in respond()'s options; its typings do not list it.
 */
const NO_DATE = { sendDate: false } as http2.ServerStreamResponseOptions;

function finish(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.closed || stream.destroyed) return;
  const trailers: http2.OutgoingHttpHeaders = { 'grpc-status': String(code) };
  if (message) trailers['grpc-message'] = percentEncode(message);
  if (!stream.headersSent) {
    // Trailers-only response.
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', ...trailers },
      { endStream: true, ...NO_DATE },
    );
    return;
  }
  stream.once('wantTrailers', () => stream.sendTrailers(trailers));
  stream.end();
}

/** Header pairs per request we accept (each ignore pattern is one). */
export const MAX_HEADER_PAIRS = 200_000;
/** Bytes of headers per request we advertise (Go's gRPC default limit is 16 MiB). */
export const MAX_HEADER_LIST_BYTES = 16 * 1024 * 1024;

export interface ServeOptions {
  /** Called with handler failures (they are also returned to the daemon as gRPC errors). */
  readonly onError?: ((method: string, err: unknown) => void) | undefined;
}

/**
 * Serves `handlers` on `conn`. Resolves when the connection closes. The returned `close`
 * ends the HTTP/2 session (GOAWAY) and the underlying stream.
 */
export function serveGrpc(
  conn: Duplex,
  handlers: ReadonlyMap<string, Handler>,
  opts: ServeOptions = {},
): { done: Promise<void>; close(): void } {
  // Large windows: the daemon streams exported files to us; 64 KiB windows cap throughput.
  // Header limits: `.dockerignore` patterns arrive one per header, and node's defaults (128
  // header pairs) answer a long ignore file with ENHANCE_YOUR_CALM, failing the build.
  const server = http2.createServer({
    maxHeaderListPairs: MAX_HEADER_PAIRS,
    maxSessionMemory: 64,
    settings: { initialWindowSize: 4 * 1024 * 1024, maxHeaderListSize: MAX_HEADER_LIST_BYTES },
  });
  let session: http2.ServerHttp2Session | undefined;
  const done = new Promise<void>((resolve) => {
    server.on('session', (s) => {
      session = s;
      s.once('connect', () => s.setLocalWindowSize(16 * 1024 * 1024));
      s.once('close', () => resolve());
      s.on('error', () => {});
    });
    conn.once('close', () => resolve());
  });
  const onStream = (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    _flags: number,
    rawHeaders: string[],
  ) => {
    const method = String(headers[':path'] ?? '');
    stream.on('error', () => {});
    const handler = handlers.get(method);
    if (!handler) {
      finish(stream, GRPC_UNIMPLEMENTED, `unknown method ${method}`);
      return;
    }
    const call = makeCall(stream, method, rawHeaders);
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc' },
      { waitForTrailers: true, ...NO_DATE },
    );
    handler(call).then(
      () => finish(stream, GRPC_OK, ''),
      (err: unknown) => {
        opts.onError?.(method, err);
        const code = err instanceof GrpcStatusError ? err.code : GRPC_UNKNOWN;
        finish(stream, code, err instanceof Error ? err.message : String(err));
      },
    );
  };
  server.on('stream', onStream);
  server.emit('connection', conn);
  return {
    done,
    close() {
      session?.close();
      conn.destroy();
    },
  };
}
