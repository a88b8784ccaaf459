import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { BuildkitError } from '../src/errors';
import type { BuildkitConnection } from '../src/transport/connect';
import { checkMultipleExporters, engineApiVersion } from '../src/transport/engine-ping';

const dir = mkdtempSync(join(tmpdir(), 'ktl-ping-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fake engine answering /_ping with the given API version. */
async function engine(api: string | undefined): Promise<{ sock: string; close: () => void }> {
  const sock = join(dir, `e-${api ?? 'none'}.sock`);
  const s = http.createServer((req, res) => {
    res.writeHead(req.url === '/_ping' ? 200 : 404, api ? { 'Api-Version': api } : {});
    res.end('OK');
  });
  await new Promise<void>((r) => s.listen(sock, r));
  return { sock, close: () => s.close() };
}

const conn = (address: string, version?: string): BuildkitConnection =>
  ({
    address,
    info: async () => {
      if (version === undefined) throw new Error('unimplemented');
      return { package: 'github.com/moby/buildkit', version, revision: '' };
    },
  }) as unknown as BuildkitConnection;

describe('builder capability checks', () => {
  test('engineApiVersion reads Api-Version from /_ping; other addresses have none', async () => {
    const e = await engine('1.41');
    try {
      expect(await engineApiVersion(`docker://unix://${e.sock}`)).toBe('1.41');
      expect(await engineApiVersion(`unix://${e.sock}`)).toBeUndefined();
      expect(await engineApiVersion(`docker://unix://${dir}/absent.sock`)).toBeUndefined();
    } finally {
      e.close();
    }
  });

  test('several exporters: refused by Docker < 26 and BuildKit < 0.13, allowed otherwise', async () => {
    const old = await engine('1.41');
    const cur = await engine('1.45');
    const none = await engine(undefined);
    try {
      const err = await checkMultipleExporters(conn(`docker://unix://${old.sock}`), 2).catch(
        (e: unknown) => e,
      );
      expect(BuildkitError.is(err) && err.code).toBe('E_UNSUPPORTED');
      expect((err as Error).message).toContain('API 1.41');
      await checkMultipleExporters(conn(`docker://unix://${old.sock}`), 1);
      await checkMultipleExporters(conn(`docker://unix://${cur.sock}`), 3);
      await checkMultipleExporters(conn(`docker://unix://${none.sock}`), 3); // unknown: let it try
      await expect(checkMultipleExporters(conn('unix:///x', 'v0.12.5'), 2)).rejects.toThrow(
        'this BuildKit (v0.12.5) exports one output per build',
      );
      await expect(checkMultipleExporters(conn('unix:///x'), 2)).rejects.toThrow('before v0.11');
      await checkMultipleExporters(conn('unix:///x', 'v0.13.1'), 2);
      await checkMultipleExporters(conn('unix:///x', 'v0.0.0+unknown'), 2);
    } finally {
      old.close();
      cur.close();
      none.close();
    }
  });
});
