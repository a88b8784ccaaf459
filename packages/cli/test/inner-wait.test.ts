/**
 * The jailed ktl starts before the outer one has found the builder and waits for its build
 * spec to be renamed into place (src/inner.ts waitForSpec).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { waitForSpec } from '../src/inner';
import { INNER_SPEC_FILE, INNER_SPEC_VERSION } from '../src/sandbox/inner-spec';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ktl-wait-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const spec = (version: number) =>
  JSON.stringify({ version, sessionId: 's1', options: {}, gateway: 'unix:///x', logs: false });

function handOver(version = INNER_SPEC_VERSION) {
  writeFileSync(join(dir, `${INNER_SPEC_FILE}.partial`), spec(version));
  renameSync(join(dir, `${INNER_SPEC_FILE}.partial`), join(dir, INNER_SPEC_FILE));
}

test('a spec already in place is read at once', async () => {
  handOver();
  await expect(waitForSpec(dir, 1000)).resolves.toMatchObject({ sessionId: 's1' });
});

test('waits for the spec renamed into place later (a partial file is not read)', async () => {
  const waiting = waitForSpec(dir, 5000);
  await new Promise((r) => setTimeout(r, 30));
  writeFileSync(join(dir, `${INNER_SPEC_FILE}.partial`), '{"version":');
  await new Promise((r) => setTimeout(r, 30));
  handOver();
  await expect(waiting).resolves.toMatchObject({ version: INNER_SPEC_VERSION, sessionId: 's1' });
});

test('a spec of another version is refused, not guessed at', async () => {
  const waiting = waitForSpec(dir, 5000);
  handOver(2);
  await expect(waiting).rejects.toThrow('unknown spec version 2');
});

test('gives up after the timeout, naming the directory', async () => {
  await expect(waitForSpec(dir, 60)).rejects.toThrow(`no build spec in ${dir} after 60 ms`);
});
