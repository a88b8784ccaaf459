/**
 * Control.Session as a byte stream. buildkitd (unlike the Docker engine, which offers
 * `POST /session`) carries the session's HTTP/2 connection inside this bidi call: each
 * BytesMessage is a slice of the raw connection. The daemon is the HTTP/2 client on it.
 */

import { Duplex } from 'node:stream';
import { type ClientDuplexStream, Metadata } from '@grpc/grpc-js';
import type { BytesMessage, ControlClient } from '../gen/moby/buildkit/v1/control';
import { type SessionHandshake, sessionHeaders } from './session-headers';

export { type SessionHandshake, sessionHeaders };

export function openControlSession(control: ControlClient, h: SessionHandshake): Duplex {
  const md = new Metadata();
  for (const [k, v] of sessionHeaders(h)) md.add(k.toLowerCase(), v);
  const call: ClientDuplexStream<BytesMessage, BytesMessage> = control.session(md);
  const duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      // Copy: http2 may reuse the buffer after the write callback, grpc-js serializes later.
      call.write({ data: Buffer.from(chunk) }, cb);
    },
    final(cb) {
      call.end();
      cb();
    },
    read() {
      call.resume();
    },
    destroy(err, cb) {
      call.cancel();
      cb(err);
    },
  });
  call.on('data', (m: BytesMessage) => {
    if (!duplex.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength)))
      call.pause();
  });
  call.on('end', () => duplex.push(null));
  call.on('error', (e: Error & { code?: number }) => {
    // 1 = CANCELLED: our own destroy(); anything else is a real failure.
    if (e.code === 1) duplex.push(null);
    else duplex.destroy(e);
  });
  return duplex;
}
