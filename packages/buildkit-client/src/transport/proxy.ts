/**
 * A private unix-socket proxy that lets plain grpc-js talk to a Docker engine's BuildKit.
 *
 * grpc-js cannot perform the engine's `POST /grpc` HTTP/1.1 upgrade itself (dialling the
 * engine socket directly fails with "Protocol error"). So grpc-js dials this proxy instead, and
 * for every connection it opens we dial the engine, do the upgrade, and then copy bytes both
 * ways. This uses only public grpc-js API, unlike a credentials subclass hooking its connector.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';

export interface UpgradeProxy {
  /** grpc-js target, `unix:///tmp/…/grpc.sock`. */
  readonly target: string;
  /** Why the most recent upstream dial or upgrade failed, if it did. */
  readonly lastError: Error | undefined;
  close(): Promise<void>;
}

export async function startUpgradeProxy(
  dialUpgraded: () => Promise<Duplex>,
): Promise<UpgradeProxy> {
  // A fresh 0700 directory (mkdtemp) keeps other local users away from the engine.
  const dir = await mkdtemp(join(tmpdir(), 'ktl-bk-'));
  const path = join(dir, 'grpc.sock');
  const live = new Set<Duplex>();
  let lastError: Error | undefined;

  const server = net.createServer((client) => {
    client.pause();
    live.add(client);
    client.once('close', () => live.delete(client));
    client.on('error', () => client.destroy());
    dialUpgraded().then(
      (upstream) => {
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        lastError = undefined;
        live.add(upstream);
        upstream.once('close', () => {
          live.delete(upstream);
          client.destroy();
        });
        client.once('close', () => upstream.destroy());
        upstream.on('error', () => upstream.destroy());
        upstream.pipe(client);
        client.pipe(upstream);
        client.resume();
      },
      (err: unknown) => {
        lastError = err instanceof Error ? err : new Error(String(err));
        client.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The proxy must not keep the process alive by itself; open gRPC calls do that.
  server.unref();

  return {
    target: `unix://${path}`,
    get lastError() {
      return lastError;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of live) s.destroy();
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
