// Start-up cost of the CLI: `ktl --version`, `ktl --help` and a policy validation against a
// bare `node -e 0`, medians of N runs, ratios against node measured in the same run.
// Usage: node bench/startup.mjs [runs]   (build first: pnpm build)
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const runs = Number(process.argv[2] ?? 15);
const ktl = join(root, 'bin', 'ktl');
const cases = [
  ['node -e 0', process.execPath, ['-e', '0']],
  ['ktl --version', ktl, ['--version']],
  ['ktl --help', ktl, ['--help']],
  [
    'ktl sandbox policy validate',
    ktl,
    ['sandbox', 'policy', 'validate', join(root, 'testdata/sandbox/linux-ci.cfg')],
  ],
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const results = cases.map(([name, cmd, args]) => {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}`);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { name, median: median(times) };
});
const base = results[0].median;
console.log(`runs: ${runs} each`);
for (const r of results)
  console.log(
    `${r.name.padEnd(30)} ${r.median.toFixed(1).padStart(7)} ms   x${(r.median / base).toFixed(2)} node`,
  );
const v = results[1].median / base;
console.log(`ktl --version / node -e 0 = ${v.toFixed(2)} (goal <= 3): ${v <= 3 ? 'OK' : 'OVER'}`);
