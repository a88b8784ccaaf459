import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { type BuildkitConnection, connect } from '../src/index';
import { probeRig, skipReason } from './rig';

const probe = await probeRig();
const rigTest = probe.ok ? test : test.skip;
const why = skipReason(probe);

let conn: BuildkitConnection | undefined;

beforeAll(async () => {
  if (probe.ok) conn = await connect(`docker://${probe.rig.dockerHost}`);
});
afterAll(async () => {
  await conn?.close();
});

rigTest(`Info reports the engine's BuildKit version${why}`, async () => {
  const info = await conn!.info();
  expect(info.package).toMatch(/buildkit/);
  expect(info.version).toMatch(/^v?\d+\.\d+/);
});

rigTest(`ListWorkers reports at least one worker with linux/amd64${why}`, async () => {
  const workers = await conn!.listWorkers();
  expect(workers.length).toBeGreaterThan(0);
  expect(workers.flatMap((w) => w.platforms)).toContain('linux/amd64');
});

rigTest(`discovery finds the engine through DOCKER_HOST${why}`, async () => {
  const found = await connect(undefined, {
    env: { DOCKER_HOST: probe.ok ? probe.rig.dockerHost : '' },
    defaults: [],
  });
  try {
    expect(found.address).toBe(`docker://${probe.ok ? probe.rig.dockerHost : ''}`);
    expect((await found.info()).version).not.toBe('');
  } finally {
    await found.close();
  }
});

rigTest(`a path that is not an engine gives E_CONNECT with the upgrade answer${why}`, async () => {
  // The engine socket answers /grpc; a plain buildkitd-style dial of it does not speak gRPC.
  await expect(
    connect(probe.ok ? probe.rig.dockerHost : 'unix:///nonexistent', { timeoutMs: 3000 }),
  ).rejects.toMatchObject({ code: 'E_CONNECT' });
});
