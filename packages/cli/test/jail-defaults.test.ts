/**
 * The jail holds nothing of the host, under every shipped policy and every runtime present:
 * probed from inside with `ktl sandbox run`, as a process that got code execution in the jail
 * would try. A descriptor the caller left open, the host's loopback services and abstract
 * sockets, its /proc/net, nested namespaces and the keyrings are each tried for real.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ktl, ktlBin, readEnvFile, repoRoot } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'ktl-jail-defaults-'));
const secret = `fd-canary-${process.pid}-${Date.now()}`;
const secretFile = join(dir, 'root-only');
writeFileSync(secretFile, `${secret}\n`);
chmodSync(secretFile, 0o600);
const abstractName = `ktl-abstract-${process.pid}-${Date.now()}`;
let tcp: Server;
let abstract: Server;
let port = 0;
beforeAll(async () => {
  tcp = createServer((s) => s.end('tcp-canary\n'));
  abstract = createServer((s) => s.end('abstract-canary\n'));
  await new Promise<void>((res) => tcp.listen(0, '127.0.0.1', res));
  await new Promise<void>((res) => abstract.listen(`\0${abstractName}`, res));
  port = (tcp.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((res) => tcp.close(() => res()));
  await new Promise<void>((res) => abstract.close(() => res()));
  rmSync(dir, { recursive: true, force: true });
});

/** keyctl(2) by number (KEYCTL_GET_KEYRING_ID of the user keyring), where known. */
const KEYCTL = { x64: 250, arm64: 219 }[arch() as 'x64' | 'arm64'];
const hasPerl = spawnSync('perl', ['-e', '1']).status === 0;

/** Node inside the jail: a connect to the host's loopback TCP port and abstract socket. */
const connectProbe = (target: string) =>
  `node -e 'const c=require("net").connect(${target});c.setTimeout(2000);` +
  `c.on("data",d=>{process.stdout.write("CONNECTED:"+d);c.destroy()});` +
  `c.on("error",e=>console.log("refused:"+e.code));c.on("timeout",()=>{console.log("timeout");c.destroy()})'`;

function probeScript(): string {
  return [
    'cat /proc/self/fd/20 2>/dev/null',
    'echo "fd20=$(readlink /proc/self/fd/20 2>/dev/null || echo none)"',
    `echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,)"`,
    `echo "hostsock=$(grep -c ${abstractName} /proc/net/unix)"`,
    'unshare -U -m true 2>/dev/null && echo nested=yes || echo nested=no',
    'grep Seccomp: /proc/self/status',
    KEYCTL !== undefined && hasPerl
      ? `perl -e 'my $r = syscall(${KEYCTL}, 0, -4, 0, 0, 0); print "keyring=", ($r >= 0 ? "yes" : "no"), "\\n"'`
      : 'echo keyring=not-probed',
    `echo "tcp=$(${connectProbe(`${port},"127.0.0.1"`)})"`,
    `echo "abstract=$(${connectProbe(`{path:"\\0${abstractName}"}`)})"`,
  ].join('; ');
}

/**
 * A command run asynchronously: the test's own servers must be able to answer while it runs
 * (a blocking spawn would make a leak look like a timeout).
 */
function runAsync(
  cmd: string,
  args: string[],
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** `ktl sandbox run` started the way a shell with a stray `exec 20<file` starts it. */
function runLeaking(runtime: string, policy: string[]) {
  return runAsync('bash', [
    '-c',
    'exec 20<"$1"; shift; exec "$@"',
    'bash',
    secretFile,
    ktlBin,
    'sandbox',
    'run',
    '--runtime',
    runtime,
    ...policy,
    '--',
    '/bin/sh',
    '-c',
    probeScript(),
  ]);
}

const doctor = spawnSync(ktlBin, ['sandbox', 'doctor', '--json'], { encoding: 'utf8' }).stdout;
const nsjailBin = process.env.KTL_NSJAIL_BIN;
const runtimes: [string, string | undefined][] = [
  [
    'bwrap',
    doctor.includes('"bwrap"')
      ? undefined
      : 'no bubblewrap on this machine (apt-get install bubblewrap)',
  ],
  [
    'nsjail',
    nsjailBin ? undefined : 'no nsjail binary (set KTL_NSJAIL_BIN to run the nsjail half)',
  ],
];
const policies: [string, string[]][] = [
  ['the embedded default', []],
  ['linux-ci.cfg', ['--policy', join(repoRoot, 'testdata/sandbox/linux-ci.cfg')]],
  ['linux-strict.cfg', ['--policy', join(repoRoot, 'testdata/sandbox/linux-strict.cfg')]],
  ['hermetic.cfg', ['--policy', join(repoRoot, 'testdata/sandbox/hermetic.cfg')]],
];

describe.each(runtimes)('under %s', (runtime, skipWhy) => {
  const t = skipWhy ? test.skip : test;
  const named = (n: string) => (skipWhy ? `${n} [skipped: ${skipWhy}]` : n);
  t.each(policies)(
    named('%s: no stray descriptor, no host network, no nested namespaces, no keyrings'),
    async (_name, policy) => {
      const r = await runLeaking(runtime, policy);
      expect(r.err).not.toContain('ERROR');
      expect(r.code).toBe(0);
      const all = r.out + r.err;
      expect(all).not.toContain(secret);
      expect(all).not.toContain('CONNECTED:');
      // The stray descriptor is gone (nsjail) or /dev/null (bubblewrap), never the file.
      expect(r.out).toMatch(/^fd20=(none|\/dev\/null)$/m);
      expect(r.out).toMatch(/^ifaces=lo,$/m);
      expect(r.out).toMatch(/^hostsock=0$/m);
      expect(r.out).toMatch(/^nested=no$/m);
      expect(r.out).toMatch(/^Seccomp:\s+2$/m);
      expect(r.out).toMatch(
        KEYCTL !== undefined && hasPerl ? /^keyring=no$/m : /^keyring=not-probed$/m,
      );
      expect(r.out).toMatch(/^tcp=refused:ECONNREFUSED$/m);
      expect(r.out).toMatch(/^abstract=refused:ECONNREFUSED$/m);
    },
  );
});

describe('the probes themselves can see a leak (the test can fail)', () => {
  test('outside any jail, the same script reads the stray descriptor and reaches both services', async () => {
    const r = await runAsync('bash', ['-c', `exec 20<"$1"; ${probeScript()}`, 'bash', secretFile]);
    expect(r.out).toContain(secret);
    expect(r.out).toMatch(/^tcp=CONNECTED:tcp-canary$/m);
    expect(r.out).toMatch(/^abstract=CONNECTED:abstract-canary$/m);
    expect(r.out).toMatch(/^hostsock=1$/m);
  });
});

// cwd `/` and cwd `/tmp` (a directory the policy mounts itself) are cwds like any other: the
// jail's root and its writable /tmp stay as the policy makes them.
const rig = readEnvFile();
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const rigUp = dockerHost !== undefined && existsSync(dockerHost.replace('unix://', ''));
const rigTest = rigUp ? test : test.skip;
const rigWhy = rigUp ? '' : ' [skipped: the BuildKit rig is not up; run scripts/rig.sh up]';

describe('ktl build from cwd / and cwd /tmp', () => {
  const hello = join(repoRoot, 'testdata', 'build', 'hello');
  const env = { DOCKER_HOST: dockerHost ?? '', KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' };
  rigTest(`from /, with absolute paths, the build runs in the sandbox${rigWhy}`, () => {
    const out = join(dir, 'from-root');
    const r = ktl(['build', hello, '-o', `type=local,dest=${out}`], { cwd: '/', env });
    expect(r.stderr).toContain('Running ktl build inside the sandbox');
    expect(r.code).toBe(0);
    expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
      'hello from the ktl sandbox demo',
    );
  });
  rigTest(`from /tmp, -f - (written to the jail's /tmp) works${rigWhy}`, () => {
    const out = join(dir, 'from-tmp');
    const r = ktl(['build', '-f', '-', hello, '-o', `type=local,dest=${out}`], {
      cwd: '/tmp',
      env,
      input: readFileSync(join(hello, 'Dockerfile'), 'utf8'),
    });
    expect(r.stderr).not.toContain('EROFS');
    expect(r.code).toBe(0);
    expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
      'hello from the ktl sandbox demo',
    );
  });
});
