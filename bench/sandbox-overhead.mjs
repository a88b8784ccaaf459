// What the sandbox costs: a fully cached `ktl build` sandboxed vs KTL_SANDBOX_DISABLE=1 on the
// same engine, and `ktl --version` vs a bare `node -e 0`; medians of N runs, measured together.
// Usage: node bench/sandbox-overhead.mjs [runs]   (needs the rig: scripts/rig.sh up; pnpm build)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const runs = Number(process.argv[2] ?? 7);
const dockerHost = /^KTL_RIG_DOCKER_HOST=(.*)$/m.exec(
  readFileSync('/var/lib/ktl-rig/env', 'utf8'),
)?.[1];
if (!dockerHost) throw new Error('no rig: run scripts/rig.sh up');
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
const env = (disable) => ({
  ...process.env,
  DOCKER_HOST: dockerHost,
  KTL_SANDBOX_DISABLE: disable ? '1' : '',
});

function time(cmd, args, e) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env: e, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

time(ktl, build, env(false)); // warm the cache
const rows = { sandboxed: [], host: [], version: [], node: [] };
for (let i = 0; i < runs; i++) {
  // Interleaved, so drift on the machine hits both sides alike.
  rows.sandboxed.push(time(ktl, build, env(false)));
  rows.host.push(time(ktl, build, env(true)));
  rows.version.push(time(ktl, ['--version'], process.env));
  rows.node.push(time(process.execPath, ['-e', '0'], process.env));
}
rmSync(out, { recursive: true, force: true });
const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
console.log(`runs: ${runs} each, cached build of testdata/build/hello`);
console.log(`ktl build, sandboxed          ${m.sandboxed.toFixed(0).padStart(6)} ms`);
console.log(`ktl build, KTL_SANDBOX_DISABLE ${m.host.toFixed(0).padStart(5)} ms`);
console.log(
  `sandbox adds                  ${(m.sandboxed - m.host).toFixed(0).padStart(6)} ms (goal <= 150 ms): ${m.sandboxed - m.host <= 150 ? 'OK' : 'OVER'}`,
);
console.log(
  `ktl --version ${m.version.toFixed(0)} ms vs node -e 0 ${m.node.toFixed(0)} ms = x${(m.version / m.node).toFixed(2)} (goal <= 3): ${m.version / m.node <= 3 ? 'OK' : 'OVER'}`,
);
