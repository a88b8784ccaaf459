/** Connecting to each engine (engines.ts) and what it says about itself. */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { type BuildkitConnection, connect, engineVersions } from '../src/index';
import { gate, testEngines } from './engines';

const engines = await testEngines();

describe.each(engines.map((e) => [e.label, e] as const))('connecting to %s', (_l, engine) => {
  const { test: engineTest, why } = gate(engine);
  const info = gate(engine, 'control-info');
  const address = `docker://${engine.dockerHost}`;
  let conn: BuildkitConnection | undefined;

  beforeAll(async () => {
    if (!engine.down) conn = await connect(address);
  });
  afterAll(async () => {
    await conn?.close();
  });

  info.test(`Info reports the engine's BuildKit version${info.why}`, async () => {
    const v = await conn!.info();
    expect(v.package).toMatch(/buildkit/);
    expect(v.version).toMatch(/^v?\d+\.\d+/);
  });

  engineTest(`_ping names the engine and its API version${why}`, async () => {
    const v = await engineVersions(address);
    expect(v?.server).toMatch(engine.id === 'compat' ? /^20\.10\./ : /^\d+\.\d+\./);
    if (engine.api !== undefined) expect(v?.api).toBe(engine.api);
    expect(v?.api).toMatch(/^1\.\d+$/);
  });

  engineTest(`ListWorkers reports at least one worker with linux/amd64${why}`, async () => {
    const workers = await conn!.listWorkers();
    expect(workers.length).toBeGreaterThan(0);
    expect(workers.flatMap((w) => w.platforms)).toContain('linux/amd64');
  });

  engineTest(`discovery finds the engine through DOCKER_HOST${why}`, async () => {
    const found = await connect(undefined, {
      env: { DOCKER_HOST: engine.dockerHost },
      defaults: [],
    });
    try {
      expect(found.address).toBe(address);
      expect((await found.listWorkers()).length).toBeGreaterThan(0);
    } finally {
      await found.close();
    }
  });

  engineTest(
    `a path that is not an engine gives E_CONNECT with the upgrade answer${why}`,
    async () => {
      // The engine socket answers /grpc; a plain buildkitd-style dial of it does not speak gRPC.
      await expect(connect(engine.dockerHost, { timeoutMs: 3000 })).rejects.toMatchObject({
        code: 'E_CONNECT',
      });
    },
  );
});
