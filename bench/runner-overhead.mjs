// What @ktl/sandbox-runner adds on top of bubblewrap: run('/bin/true') against the same bwrap
// argv spawned directly, the planned argv with its host wrappers (nice, prlimit), and a bare
// spawn of /bin/true. Runs against the built dist (pnpm --filter @ktl/sandbox-runner build).
//
//   node bench/runner-overhead.mjs [runs=100]
//
// Goal: run() at most 15 ms above raw bubblewrap (median).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { plan, run } = await import(join(root, 'packages/sandbox-runner/dist/index.js'));

const N = Number(process.argv[2] ?? 100);
const policy = {
  name: 'bench',
  envar: ['PATH=/usr/bin:/bin'],
  rlimit_as_type: 'INF',
  mount: [
    { src: '/usr', dst: '/usr', is_bind: true },
    { src: '/lib', dst: '/lib', is_bind: true, mandatory: false },
    { src: '/lib64', dst: '/lib64', is_bind: true, mandatory: false },
    { src: '/bin', dst: '/bin', is_bind: true, mandatory: false },
    { dst: '/proc', fstype: 'proc' },
    { dst: '/tmp', fstype: 'tmpfs', rw: true },
  ],
};
const options = { policy, runtime: 'bwrap', stdin: 'ignore' };

function spawnWait(argv, extraFds = 0) {
  return new Promise((resolve, reject) => {
    const stdio = ['ignore', 'ignore', 'ignore', ...Array(extraFds).fill('pipe')];
    const c = spawn(argv[0], argv.slice(1), { stdio });
    for (let i = 3; i < 3 + extraFds; i++) c.stdio[i].resume();
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv[0]}: ${code}`))));
  });
}

async function time(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const p = plan('/bin/true', [], options);
const at = p.argv.findIndex((a) => a.endsWith('/bwrap'));
const cases = {
  'spawn /bin/true': () => spawnWait(['/bin/true']),
  'raw bwrap argv': () => spawnWait(p.argv.slice(at), 1),
  'bwrap + host wrappers': () => spawnWait(p.argv, 1),
  "run('/bin/true')": () => run('/bin/true', [], options),
};

const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (const fn of Object.values(cases)) await fn(); // warm up
// Interleaved, so drift in machine load hits every case alike.
for (let i = 0; i < N; i++) {
  for (const [k, fn] of Object.entries(cases)) samples[k].push(await time(fn));
}

const q = (xs, f) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * f))];
const med = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, q(xs, 0.5)]));
const raw = med['raw bwrap argv'];
console.log(
  `runs: ${N} each (bubblewrap, wrappers: ${
    p.argv
      .slice(0, at)
      .filter((a) => a.startsWith('/'))
      .join(', ') || 'none'
  })`,
);
console.log('case                       median    p90     x raw bwrap');
for (const [k, xs] of Object.entries(samples)) {
  console.log(
    `${k.padEnd(26)} ${med[k].toFixed(2).padStart(6)} ms ${q(xs, 0.9).toFixed(2).padStart(6)} ms ${(med[k] / raw).toFixed(2).padStart(6)}`,
  );
}
const over = med["run('/bin/true')"] - raw;
console.log(
  `run() overhead above raw bwrap: ${over.toFixed(2)} ms (goal <= 15 ms): ${over <= 15 ? 'OK' : 'OVER'}`,
);
