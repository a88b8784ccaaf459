// What the rootless engine costs: a fully cached `ktl build` (sandboxed, the default) on the
// rootless engine `ktl builder start` gives against the same build on the rig's rootful engine,
// both Docker 26.1 on this machine; medians of N interleaved runs, and a cold start of each
// mode's engine is not part of it. Usage: node bench/rootless-builder.mjs [runs]
// (needs the rig: scripts/rig.sh up, scripts/rig-rootless.sh up; pnpm build)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const runs = Number(process.argv[2] ?? 9);
const read = (file, key) => {
  try {
    return new RegExp(`^${key}=(.*)$`, 'm').exec(readFileSync(file, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
};
const rootful = read('/var/lib/ktl-rig/env', 'KTL_RIG_DOCKER_HOST');
const rootless = read('/var/lib/ktl-rig/env-rootless', 'KTL_RIG_ROOTLESS_DOCKER_HOST');
if (!rootful) throw new Error('no rig: run scripts/rig.sh up');
if (!rootless) throw new Error('no rootless engine: run scripts/rig-rootless.sh up');
const ktl = join(root, 'bin', 'ktl');
const out = mkdtempSync(join(tmpdir(), 'ktl-bench-'));
const build = [
  'build',
  join(root, 'testdata', 'build', 'hello'),
  '-o',
  `type=local,dest=${out}`,
  '--progress',
  'quiet',
];
const env = (dockerHost) => ({
  ...process.env,
  DOCKER_HOST: dockerHost,
  BUILDKIT_HOST: '',
  KTL_SANDBOX_DISABLE: '',
  KTL_SANDBOX_CONFIG: '',
});

function time(e) {
  const t = process.hrtime.bigint();
  const r = spawnSync(ktl, build, { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`ktl build exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

time(env(rootful)); // warm both caches
time(env(rootless));
const rows = { rootful: [], rootless: [] };
for (let i = 0; i < runs; i++) {
  // Interleaved, so drift on the machine hits both sides alike.
  rows.rootful.push(time(env(rootful)));
  rows.rootless.push(time(env(rootless)));
}
rmSync(out, { recursive: true, force: true });
const m = { rootful: median(rows.rootful), rootless: median(rows.rootless) };
const range = (xs) => `${Math.min(...xs).toFixed(0)}..${Math.max(...xs).toFixed(0)}`;
console.log(`runs: ${runs} each, cached sandboxed build of testdata/build/hello, -o type=local`);
console.log(`rootful engine   ${m.rootful.toFixed(0).padStart(6)} ms  (${range(rows.rootful)})`);
console.log(`rootless engine  ${m.rootless.toFixed(0).padStart(6)} ms  (${range(rows.rootless)})`);
console.log(
  `rootless adds    ${(m.rootless - m.rootful).toFixed(0).padStart(6)} ms (x${(m.rootless / m.rootful).toFixed(2)})`,
);
