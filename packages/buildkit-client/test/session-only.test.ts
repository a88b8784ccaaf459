import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import { connectForSession } from '../src/index';

// A fake engine on a unix socket: it takes the POST /session upgrade, records the request's
// head, answers 101 and echoes the upgraded stream back.
const dir = mkdtempSync(join(tmpdir(), 'ktl-session-only-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeEngine(path: string, heads: string[]) {
  const server = createServer((s: Socket) => {
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      heads.push(buf.slice(0, end));
      s.write('HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      const rest = Buffer.from(buf.slice(end + 4), 'latin1');
      if (rest.length) s.write(rest);
      s.pipe(s);
    };
    s.on('data', onData);
  });
  return new Promise<typeof server>((r) => server.listen(path, () => r(server)));
}

test("docker://: the session is the engine's /session upgrade, headers announce it, bytes flow both ways", async () => {
  const sock = join(dir, 'engine.sock');
  const heads: string[] = [];
  const server = await fakeEngine(sock, heads);
  try {
    const conn = await connectForSession(`docker://unix://${sock}`);
    const stream = await conn.openSessionTransport({
      id: 'sess1',
      name: 'ktl',
      sharedKey: 'key',
      methods: ['/moby.filesync.v1.FileSync/DiffCopy', '/grpc.health.v1.Health/Check'],
    });
    const echoed = new Promise<string>((r) => stream.once('data', (b: Buffer) => r(b.toString())));
    stream.resume(); // handed over paused (the session's HTTP/2 server takes it from there)
    stream.write('ping');
    expect(await echoed).toBe('ping');
    stream.destroy();
    await conn.close();
    expect(heads).toHaveLength(1);
    const lines = heads[0]!.split('\r\n');
    expect(lines[0]).toMatch(/^POST \/session HTTP\/1\.1$/);
    expect(lines).toEqual(
      expect.arrayContaining([
        'X-Docker-Expose-Session-Uuid: sess1',
        'X-Docker-Expose-Session-Name: ktl',
        'X-Docker-Expose-Session-Sharedkey: key',
        'X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy',
        'X-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check',
      ]),
    );
  } finally {
    server.close();
  }
});

test('an engine that is not there: the error names the socket', async () => {
  const conn = await connectForSession(`docker://unix://${join(dir, 'missing.sock')}`);
  await expect(
    conn.openSessionTransport({ id: 'x', name: 'ktl', sharedKey: 'k', methods: [] }),
  ).rejects.toThrow(/missing\.sock/);
});

test('a bad address is refused as connect() refuses it', async () => {
  await expect(connectForSession('nope://x')).rejects.toThrow(/nope/);
});
