/**
 * `ktl build --ssh` end to end: a real ssh-agent holding a fresh ed25519 key, forwarded to
 * `RUN --mount=type=ssh` steps on each engine (buildkit-client/test/engines.ts), on the host
 * and in the sandbox (on the compatibility engine in the sandbox only). The base
 * image (busybox) has no ssh client, so the host's own ssh-add goes into the context with the
 * shared libraries it links (run through their loader): it speaks the agent protocol over the
 * socket BuildKit mounts, and what it lists proves the agent's answers came through.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { gate, testEngines } from '../../buildkit-client/test/engines';
import { ktl } from './helpers';

const engines = await testEngines();
const base = engines[0]!.baseImage;

const dir = mkdtempSync(join(tmpdir(), 'ktl-ssh-'));
const sh = (cmd: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
const have = (cmd: string) => sh('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['ssh-agent', 'ssh-keygen', 'ssh-add', 'ldd'].filter((t) => !have(t));

// The agent: started here, stopped by its pid.
const sock = join(dir, 'agent.sock');
const comment = `ktl-ssh-e2e-${randomBytes(4).toString('hex')}`;
let agentPid: number | undefined;
let setupFailure = '';
if (tools.length === 0) {
  const started = sh('ssh-agent', ['-s', '-a', sock]);
  agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1]) || undefined;
  const key = join(dir, 'id_ed25519');
  const gen = sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key]);
  const add = sh('ssh-add', [key], { SSH_AUTH_SOCK: sock });
  if (agentPid === undefined || gen.status !== 0 || add.status !== 0)
    setupFailure = `ssh-agent setup failed: ${started.stderr}${gen.stderr}${add.stderr}`.trim();
}
afterAll(() => {
  if (agentPid !== undefined) process.kill(agentPid);
  rmSync(dir, { recursive: true, force: true });
});

// The context: ssh-add, its libraries and their loader, in bin/.
const ctx = join(dir, 'ctx');
let loader = '';
if (tools.length === 0 && setupFailure === '') {
  mkdirSync(join(ctx, 'bin'), { recursive: true });
  const sshAdd = sh('sh', ['-c', 'command -v ssh-add']).stdout.trim();
  copyFileSync(sshAdd, join(ctx, 'bin', 'ssh-add'));
  for (const line of sh('ldd', [sshAdd]).stdout.split('\n')) {
    const lib = /(\/\S+)/.exec(line)?.[1];
    if (!lib) continue;
    copyFileSync(lib, join(ctx, 'bin', basename(lib)));
    if (!line.includes('=>')) loader = basename(lib);
  }
  if (!loader) setupFailure = `no dynamic loader in ldd ${sshAdd}`;
}
const why =
  tools.length > 0
    ? ` [skipped: ${tools.join(', ')} not installed]`
    : setupFailure
      ? ` [skipped: ${setupFailure}]`
      : '';
const bwrap = have('bwrap');

const env = {
  BUILDKIT_HOST: '',
  DOCKER_CONFIG: join(dir, 'docker-config'),
  SSH_AUTH_SOCK: sock,
};
mkdirSync(env.DOCKER_CONFIG, { recursive: true });
const modes: Array<[string, Record<string, string>, string]> = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }, ''],
  [
    'in the sandbox',
    { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    bwrap ? '' : ' [skipped: bwrap is not installed]',
  ],
];
const cases = engines.flatMap((e) =>
  modes
    .filter(([m]) => e.id === 'rig' || m === 'in the sandbox')
    .map(([m, modeEnv, noMode]) => {
      // The engine first, then the tools, then the sandbox runtime.
      const g = gate(e);
      const skip = g.why || why || noMode;
      return [
        e.label,
        m,
        { ...modeEnv, DOCKER_HOST: e.dockerHost },
        skip === '' ? test : test.skip,
        skip,
      ] as const;
    }),
);

const sshAdd = (args: string) => `/sshbin/${loader} --library-path /sshbin /sshbin/ssh-add ${args}`;
const dockerfile = (name: string, body: string) => {
  const p = join(dir, `${name}.Dockerfile`);
  writeFileSync(p, body);
  return p;
};

describe.each(cases)('ktl build --ssh on %s %s', (label, mode, modeEnv, modeTest, modeWhy) => {
  const slug = `${label}-${mode}`.replace(/\W+/g, '-');
  const out = join(dir, `out-${slug}`);
  modeTest(
    `RUN --mount=type=ssh reaches the agent (default and a named id); the build cannot change it${modeWhy}`,
    () => {
      const df = dockerfile(
        `ok-${slug}`,
        [
          `FROM ${base}`,
          'COPY bin /sshbin',
          `RUN --mount=type=ssh,required=true test -S "$SSH_AUTH_SOCK" && ${sshAdd('-l')} > /default.txt`,
          `RUN --mount=type=ssh,id=gh,required=true { ${sshAdd('-D')}; ${sshAdd('-l')}; } > /gh.txt 2>&1`,
          'FROM scratch',
          'COPY --from=0 /default.txt /gh.txt /',
          '',
        ].join('\n'),
      );
      const r = ktl(
        [
          'build',
          ctx,
          '-f',
          df,
          '--no-cache',
          '--progress',
          'plain',
          '--ssh',
          'default',
          '--ssh',
          `gh=${sock}`,
          '-o',
          `type=local,dest=${out}`,
        ],
        { env: { ...env, ...modeEnv } },
      );
      expect(r.stderr).toContain(
        mode === 'in the sandbox' ? 'Running ktl build inside the sandbox' : '#0 building with',
      );
      expect(r.code).toBe(0);
      // The agent's REQUEST_IDENTITIES answer, through BuildKit, the session and ktl.
      expect(readFileSync(join(out, 'default.txt'), 'utf8')).toMatch(
        new RegExp(`^256 SHA256:\\S+ ${comment} \\(ED25519\\)\\n$`),
      );
      const gh = readFileSync(join(out, 'gh.txt'), 'utf8');
      expect(gh).toContain('Failed to remove all identities.');
      expect(gh).toContain(comment);
      // Still there on the host: the refusal came from ktl, not from an emptied agent.
      expect(sh('ssh-add', ['-l'], { SSH_AUTH_SOCK: sock }).stdout).toContain(comment);
    },
    120_000,
  );

  modeTest(
    `an id the Dockerfile needs but --ssh does not give: exit 4, which id, what to pass${modeWhy}`,
    () => {
      const df = dockerfile(
        `missing-${slug}`,
        `FROM ${base}\nRUN --mount=type=ssh,id=deploy,required=true true\n`,
      );
      const given = ktl(
        ['build', ctx, '-f', df, '--no-cache', '--progress', 'plain', '--ssh', 'default'],
        {
          env: { ...env, ...modeEnv },
        },
      );
      expect(given.code).toBe(4);
      expect(given.stderr).toContain(
        'the build asked for ssh agent "deploy", which this client does not forward (forwarded: default); forward it with --ssh deploy=SOCKET',
      );
      const none = ktl(['build', ctx, '-f', df, '--no-cache', '--progress', 'plain'], {
        env: { ...env, ...modeEnv },
      });
      expect(none.code).toBe(4);
      expect(none.stderr).toContain('no SSH key "deploy" forwarded from the client');
      expect(none.stderr).toContain(
        'hint: forward an ssh agent with --ssh deploy=SOCKET (or --ssh deploy for $SSH_AUTH_SOCK)',
      );
    },
    120_000,
  );
});

describe('ktl build --ssh refusals (exit 2), no builder needed', () => {
  test('a private key file, and no agent to default to', () => {
    const keyDir = mkdtempSync(join(dir, 'key-'));
    const key = join(keyDir, 'id_ed25519');
    writeFileSync(key, '-----BEGIN OPENSSH PRIVATE KEY-----\n');
    writeFileSync(join(keyDir, 'Dockerfile'), 'FROM scratch\n');
    const r = ktl(['build', keyDir, '--ssh', `k=${key}`], {
      env: { ...env, DOCKER_HOST: engines[0]!.dockerHost, KTL_SANDBOX_DISABLE: '1' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `--ssh "k=${key}": ${key} is a file, not an agent socket: ktl does not load private key files`,
    );
    expect(r.stderr).toContain('ssh-add KEYFILE');
    const n = ktl(['build', keyDir, '--ssh', 'default'], {
      env: {
        ...env,
        DOCKER_HOST: engines[0]!.dockerHost,
        KTL_SANDBOX_DISABLE: '1',
        SSH_AUTH_SOCK: '',
      },
    });
    expect(n.code).toBe(2);
    expect(n.stderr).toContain('--ssh "default": SSH_AUTH_SOCK is not set');
  });
});
