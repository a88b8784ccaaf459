/**
 * Reading one HTTP/1.1 request head from an untrusted peer (a jailed build client): bounded in
 * size and time, nothing after the head consumed, so the caller decides what the rest means.
 */
import type * as net from 'node:net';

export interface RequestHead {
  method: string;
  /** The request target exactly as sent. */
  target: string;
  /** Header lines in order, names lower-cased; repeated names stay separate. */
  headers: [string, string][];
  /** Bytes that arrived after the head (the start of whatever comes next). */
  rest: Buffer;
}

export const MAX_HEAD = 64 * 1024;

export function readRequestHead(sock: net.Socket, timeoutMs = 10_000): Promise<RequestHead> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () => done(new Error(`no request head within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = (err: Error | undefined, head?: RequestHead) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', done);
      sock.off('end', onEnd);
      sock.pause();
      if (err) reject(err);
      else resolve(head!);
    };
    const onEnd = () => done(new Error('connection closed before a full request head'));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD) done(new Error(`request head larger than ${MAX_HEAD} bytes`));
        return;
      }
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? '');
      if (!m)
        return done(
          new Error(`malformed request line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`),
        );
      const headers: [string, string][] = [];
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        // Obsolete line folding and header names with spaces are smuggling material: refuse.
        if (i <= 0 || /^[\s]/.test(line) || /\s/.test(line.slice(0, i))) {
          return done(new Error(`malformed header line ${JSON.stringify(line.slice(0, 80))}`));
        }
        headers.push([line.slice(0, i).toLowerCase(), line.slice(i + 1).trim()]);
      }
      done(undefined, { method: m[1]!, target: m[2]!, headers, rest: buf.subarray(end + 4) });
    };
    sock.on('data', onData);
    sock.on('error', done);
    sock.on('end', onEnd);
    sock.resume();
  });
}

export function header(h: RequestHead, name: string): string | undefined {
  return h.headers.find(([k]) => k === name)?.[1];
}

/** A short HTTP/1.1 answer with a Docker-style JSON error body; the connection is closed. */
export function refuseHttp(
  sock: net.Socket,
  status: number,
  reason: string,
  message: string,
): void {
  const body = JSON.stringify({ message });
  sock.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
