/**
 * Docker 29.2+ (API 1.53) serves BuildKit's gRPC natively on its API socket. This machine's
 * engine is 26.1, so the newer engine is emulated in front of it: a socket that answers
 * `_ping` with the API version under test, forwards HTTP/2-with-prior-knowledge connections
 * to the real engine's BuildKit, and passes everything else (the /grpc and /session upgrades)
 * through untouched. The build itself always runs on the real engine.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connect, parseAddress, solveDockerfile } from '../src/index';
import { dialRaw, httpUpgrade } from '../src/transport/upgrade';
import { probeRig, skipReason } from './rig';

const probe = await probeRig();
const base = probe.ok ? probe.rig.baseImage : undefined;
const ready = probe.ok && base !== undefined;
const rigTest = ready ? test : test.skip;
const why = skipReason(probe);

const PREFACE = 'PRI * HTTP/2.0';
let work: string;

interface FakeEngine {
  sock: string;
  seen: string[];
  close(): Promise<void>;
}

/** The emulated engine; `native: false` drops HTTP/2 connections (a broken native path). */
async function fakeEngine(api: string, native = true): Promise<FakeEngine> {
  const real = parseAddress(`docker://${probe.ok ? probe.rig.dockerHost : ''}`);
  if (real.kind !== 'docker') throw new Error('the rig engine is not docker://');
  const sock = join(work, `engine-${api}-${native}.sock`);
  const seen: string[] = [];
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.on('error', () => c.destroy());
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const text = buf.toString('latin1');
      if (buf.length < PREFACE.length && PREFACE.startsWith(text)) return;
      if (!text.startsWith(PREFACE) && !text.includes('\r\n')) return; // the request line is not all here
      c.off('data', onData);
      c.pause();
      void route(text);
    };
    const route = async (text: string) => {
      let up: net.Socket;
      if (text.startsWith(PREFACE)) {
        seen.push('h2');
        if (!native) return c.destroy();
        up = await httpUpgrade(await dialRaw(real.engine), { path: '/grpc' });
      } else {
        const line = text.slice(0, text.indexOf('\r\n'));
        seen.push(line.replace(/ HTTP\/1\.1$/, ''));
        if (/^(GET|HEAD) \/(v[\d.]+\/)?_ping /.test(line)) {
          c.end(`HTTP/1.1 200 OK\r\nApi-Version: ${api}\r\nContent-Length: 2\r\n\r\nOK`);
          return;
        }
        up = await dialRaw(real.engine);
      }
      up.write(buf);
      c.pipe(up).pipe(c);
      c.resume();
      up.on('error', () => c.destroy());
      up.on('close', () => c.destroy());
      c.on('close', () => up.destroy());
    };
    c.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return {
    sock,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ktl-native-'));
  await mkdir(join(work, 'ctx'), { recursive: true });
  await writeFile(join(work, 'ctx', 'Dockerfile'), `FROM ${base}\nCOPY f /f\nRUN cat /f > /out\n`);
  await writeFile(join(work, 'ctx', 'f'), 'native\n');
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function buildThrough(engine: FakeEngine, out: string): Promise<string | undefined> {
  const conn = await connect(`docker://unix://${engine.sock}`);
  try {
    await solveDockerfile(conn, {
      contextDir: join(work, 'ctx'),
      exports: [{ type: 'local', dest: join(work, out) }],
    });
    expect(await readFile(join(work, out, 'out'), 'utf8')).toBe('native\n');
    return conn.transport;
  } finally {
    await conn.close();
  }
}

describe('Docker engines with native gRPC', () => {
  rigTest(
    `API 1.53: gRPC straight on the socket, the session over Control.Session, no upgrades${why}`,
    async () => {
      const e = await fakeEngine('1.53');
      try {
        expect(await buildThrough(e, 'out-native')).toBe('engine-native');
        expect(e.seen).toContain('h2');
        expect(e.seen.filter((s) => /\/(grpc|session)$/.test(s))).toEqual([]);
      } finally {
        await e.close();
      }
    },
    90_000,
  );

  rigTest(
    `API 1.45: the /grpc and /session upgrades, never HTTP/2 on the socket${why}`,
    async () => {
      const e = await fakeEngine('1.45');
      try {
        expect(await buildThrough(e, 'out-upgrade')).toBe('engine-upgrade');
        expect(e.seen).not.toContain('h2');
        expect(e.seen).toContain('POST /grpc');
        expect(e.seen).toContain('POST /session');
      } finally {
        await e.close();
      }
    },
    90_000,
  );

  rigTest(
    `API 1.53 whose native path fails: falls back to the upgrades and still builds${why}`,
    async () => {
      const e = await fakeEngine('1.53', false);
      try {
        expect(await buildThrough(e, 'out-fallback')).toBe('engine-upgrade');
        expect(e.seen).toContain('h2');
        expect(e.seen).toContain('POST /grpc');
      } finally {
        await e.close();
      }
    },
    90_000,
  );
});
