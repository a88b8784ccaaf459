// Context upload: `ktl build` vs `docker buildx build` on the same engine (the rig), for a
// 20k-file / 500 MiB context read by one RUN step through a bind mount, so the whole context
// crosses the session:
//
//   FROM <base>
//   RUN --mount=type=bind,target=/ctx find /ctx -type f | wc -l
//
// cold  = a fresh directory (hardlinked copy of the generated tree: nothing cached for it)
// touch = the same directory again after touching one file (incremental transfer)
// Each run is the whole CLI process, --no-cache so the RUN step really executes.
//
//   node bench/context-upload.mjs [runs=3] [--files N] [--mib M] [--sandbox]
//
// Needs the rig (scripts/rig.sh up) and a built ktl (pnpm build). ktl runs on the host
// (KTL_SANDBOX_DISABLE=1) unless --sandbox. Goal: ktl <= 1.0x buildx (median).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : Number(args[i + 1]);
};
const runs = Number(
  args.find((a) => /^\d+$/.test(a) && !args[args.indexOf(a) - 1]?.startsWith('--')) ?? 3,
);
const FILES = opt('--files', 20_000);
const MIB = opt('--mib', 500);
const sandbox = args.includes('--sandbox');

const envFile = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';
if (!existsSync(envFile)) {
  console.error(`no rig (${envFile}); run scripts/rig.sh up`);
  process.exit(2);
}
const rig = Object.fromEntries(
  readFileSync(envFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

const work = mkdtempSync(join(tmpdir(), 'ktl-bench-ctx-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// The source tree: FILES-10 small files (2 KiB each) in directories of 100, and 10 large
// files making up the rest of MIB. Random bytes so nothing compresses away.
const src = join(work, 'src');
const bigCount = 10;
const small = FILES - bigCount;
const smallSize = 2048;
const bigSize = Math.floor((MIB * 1024 * 1024 - small * smallSize) / bigCount);
const t0 = performance.now();
const pool = randomBytes(smallSize * 64);
for (let i = 0; i < small; i++) {
  const dir = join(src, `d${String(Math.floor(i / 100)).padStart(4, '0')}`);
  if (i % 100 === 0) mkdirSync(dir, { recursive: true });
  const off = (i % 64) * smallSize;
  writeFileSync(join(dir, `f${i}`), pool.subarray(off, off + smallSize));
}
mkdirSync(join(src, 'big'));
for (let i = 0; i < bigCount; i++)
  writeFileSync(join(src, 'big', `b${i}.bin`), randomBytes(bigSize));
writeFileSync(
  join(src, 'Dockerfile'),
  `FROM ${rig.KTL_RIG_BASE_IMAGE}\nRUN --mount=type=bind,target=/ctx find /ctx -type f | wc -l\n`,
);
console.log(
  `context: ${FILES} files, ${MIB} MiB (generated in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
);

let n = 0;
function freshCopy() {
  const d = join(work, `ctx${n++}`);
  execFileSync('cp', ['-al', src, d]);
  return d;
}

const tools = {
  ktl: (ctx) => [
    join(root, 'bin', 'ktl'),
    ['build', ctx, '--no-cache', '--progress', 'plain', '-o', 'type=cacheonly'],
    { DOCKER_HOST: rig.KTL_RIG_DOCKER_HOST, ...(sandbox ? {} : { KTL_SANDBOX_DISABLE: '1' }) },
  ],
  buildx: (ctx) => [
    rig.KTL_RIG_BUILDX,
    ['build', ctx, '--no-cache', '--progress', 'plain', '-o', 'type=cacheonly'],
    { DOCKER_HOST: rig.KTL_RIG_DOCKER_HOST, DOCKER_CONFIG: rig.KTL_RIG_DOCKER_CONFIG },
  ],
};

function timed(tool, ctx) {
  const [cmd, argv, env] = tools[tool](ctx);
  const t = performance.now();
  const r = spawnSync(cmd, argv, { env: { ...process.env, ...env }, encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${tool} failed (${r.status}):\n${r.stderr}`);
  const count = /#\d+ \d+\.\d+ (\d+)\s*$/m.exec(r.stderr)?.[1];
  if (count !== String(FILES + 1))
    throw new Error(`${tool}: step saw ${count} files, expected ${FILES + 1}`);
  return ms;
}

const samples = { ktl: { cold: [], touch: [] }, buildx: { cold: [], touch: [] } };
timed('ktl', freshCopy()); // warm up: base image, page cache
timed('buildx', freshCopy());
for (let i = 0; i < runs; i++) {
  // Interleaved so drift in machine load hits both tools alike.
  for (const tool of ['ktl', 'buildx']) {
    const ctx = freshCopy();
    samples[tool].cold.push(timed(tool, ctx));
    const f = join(ctx, 'd0000', 'f0');
    writeFileSync(f, `touched ${i}\n`.padEnd(smallSize, '.')); // new inode: the source stays intact
    utimesSync(f, new Date(), new Date());
    samples[tool].touch.push(timed(tool, ctx));
    rmSync(ctx, { recursive: true, force: true });
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
console.log(`runs: ${runs} each, medians${sandbox ? ' (ktl inside the sandbox)' : ''}`);
console.log('case    ktl        buildx     ktl/buildx');
for (const c of ['cold', 'touch']) {
  const k = median(samples.ktl[c]);
  const b = median(samples.buildx[c]);
  console.log(`${c.padEnd(7)} ${fmt(k).padEnd(10)} ${fmt(b).padEnd(10)} ${(k / b).toFixed(2)}x`);
}
console.log(
  `note: each cold run left its context (${MIB} MiB) in the rig's build cache; reclaim with\n` +
    `  DOCKER_CONFIG=${rig.KTL_RIG_DOCKER_CONFIG} docker -H ${rig.KTL_RIG_DOCKER_HOST} builder prune -f --filter type=source.local`,
);
