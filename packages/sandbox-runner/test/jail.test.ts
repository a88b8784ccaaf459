/**
 * The same observable behaviour under every runtime present here: isolation, limits, exit
 * statuses, signals, streaming, cancellation. A runtime that is missing is registered as
 * skipped with the reason (set KTL_NSJAIL_BIN to run the nsjail half).
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { run, SandboxError } from '../src/index';
import { gate, isRoot, opts, type Runtime, TEST_POLICY } from './helpers';

const memcg =
  isRoot &&
  existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') &&
  existsSync('/sys/fs/cgroup/pids/cgroup.procs');

function markerProcesses(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker)) found.push(`${pid}: ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

async function firstLine(s: Readable | null): Promise<string> {
  let text = '';
  for await (const chunk of s!) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0]!;
}

describe.each(['bwrap', 'nsjail'] as Runtime[])('%s', (rt) => {
  const g = gate(rt);
  const t = g.ok ? test : test.skip;
  const named = (name: string) => (g.ok ? name : `${name} [skipped: ${g.why}]`);
  const sh = (script: string, extra: Parameters<typeof opts>[1] = {}) =>
    run('/bin/sh', ['-c', script], opts(rt, extra));

  t(named('a host marker file is invisible, a bind is visible and read-only'), async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ktl-marker-'));
    try {
      writeFileSync(join(dir, 'marker'), 'secret\n');
      const r = await sh(
        `test -e ${dir}/marker && echo visible || echo hidden; cat /m/marker; ` +
          'touch /m/x 2>/dev/null && echo writable || echo read-only',
        { binds: [{ src: dir, dst: '/m', readonly: true }] },
      );
      expect(r.stdout).toBe('hidden\nsecret\nread-only\n');
      const w = await sh('echo hi > /m/x && cat /m/x', {
        binds: [{ src: dir, dst: '/m', readonly: false }],
      });
      expect(w.stdout).toBe('hi\n');
      expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('hi\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  t(
    named('a pinned bind mounts what its descriptor was opened on, not what its path is now'),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ktl-pin-'));
      for (const d of ['checked', 'other']) {
        mkdirSync(join(dir, d));
        writeFileSync(join(dir, d, 'which'), `${d}\n`);
      }
      const fd = openSync(join(dir, 'checked'), 0o10000000); // O_PATH, before the swap
      try {
        // The checked directory moves away and a link to another takes its name: by path the
        // bind would mount the link's target.
        renameSync(join(dir, 'checked'), join(dir, 'moved'));
        symlinkSync(join(dir, 'other'), join(dir, 'checked'));
        const r = await sh('cat /m/which', {
          binds: [{ src: join(dir, 'checked'), dst: '/m', readonly: true, fd }],
        });
        expect(r.stdout).toBe('checked\n');
      } finally {
        closeSync(fd);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  t(named('/usr and / are read-only, pid 1, only lo, hostname'), async () => {
    const r = await sh(
      'touch /usr/x 2>/dev/null && echo usr-rw || echo usr-ro; ' +
        'touch /x 2>/dev/null && echo root-rw || echo root-ro; echo pid=$$; ' +
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; hostname",
    );
    expect(r.stdout).toBe('usr-ro\nroot-ro\npid=1\nlo\njail\n');
  });

  t(named('ids, caps, src_content, symlink, nice, oom_score_adj, max_cpus, persona'), async () => {
    const r = await sh(
      'id -u; id -g; cat /etc/hello; stat -c %a /etc/hello; readlink /lnk; ' +
        'grep CapEff /proc/self/status; cat /proc/self/oom_score_adj; nice; nproc; ' +
        'cat /proc/self/personality',
      {
        policy: {
          uidmap: [{ inside_id: '65534' }],
          gidmap: [{ inside_id: '65534' }],
          cap: ['CAP_NET_RAW'],
          mount: [
            ...TEST_POLICY.mount!,
            { dst: '/etc/hello', src_content: new TextEncoder().encode('hi\n') },
            { src: '/usr/bin', dst: '/lnk', is_symlink: true },
          ],
          nice_level: 10,
          oom_score_adj: 123,
          max_cpus: 1,
          persona_addr_no_randomize: true,
        },
      },
    );
    expect(r.stdout).toBe(
      '65534\n65534\nhi\n644\n/usr/bin\nCapEff:\t0000000000002000\n123\n10\n1\n00040000\n',
    );
  });

  t(named('no user namespace: the caller ids, capabilities still dropped'), async () => {
    const r = await sh('id -u; grep CapEff /proc/self/status', {
      policy: { clone_newuser: false },
    });
    expect(r.stdout).toBe(`${process.getuid!()}\nCapEff:\t0000000000000000\n`);
  });

  t(named('tmpfs size is enforced'), async () => {
    const r = await sh(
      'head -c 6291456 /dev/zero > /tmp/a && echo 6m-ok; ' +
        'head -c 6291456 /dev/zero > /tmp/b 2>/dev/null || echo full',
      { policy: { rlimit_fsize_type: 'INF' } },
    );
    expect(r.stdout).toBe('6m-ok\nfull\n');
  });

  t(named('environment: cleared, envar K=V and bare K, keep_env'), async () => {
    process.env.KTL_TEST_COPY = 'copied';
    const cleared = await sh('env | sort', { env: { EXTRA: '1' } });
    expect(cleared.stdout).toBe('EXTRA=1\nHOME=/tmp\nPATH=/usr/bin:/bin\nPWD=/\n');
    const bare = await sh('echo $KTL_TEST_COPY', {
      policy: { envar: ['PATH=/usr/bin:/bin', 'KTL_TEST_COPY'] },
    });
    expect(bare.stdout).toBe('copied\n');
    const kept = await sh('echo $KTL_TEST_COPY', { policy: { keep_env: true } });
    expect(kept.stdout).toBe('copied\n');
  });

  t(named('cwd from the option'), async () => {
    const r = await sh('pwd', { cwd: '/fixtures' });
    expect(r.stdout).toBe('/fixtures\n');
  });

  t(named('rlimits: nofile, fsize (MiB), as (MiB)'), async () => {
    const r = await sh(
      'ulimit -n; ulimit -v; head -c 3145728 /dev/zero > /tmp/f; echo status=$?; wc -c < /tmp/f',
      {
        policy: { rlimit_nofile: 77n, rlimit_fsize: 2n, rlimit_as: 512n, rlimit_as_type: 'VALUE' },
      },
    );
    // ulimit -v is in KiB; head is killed by SIGXFSZ (25) at 2 MiB.
    expect(r.stdout).toBe('77\n524288\nstatus=153\n2097152\n');
  });

  t(named('policy time_limit kills the jail'), async () => {
    const e = await sh('sleep 30', { policy: { time_limit: 1 }, reject: false });
    expect(SandboxError.is(e)).toBe(true);
    expect(e).toMatchObject({ code: 'E_TIMEOUT', timedOut: true, signal: 'SIGKILL' });
    expect((e as SandboxError).message).toMatch(/^timed out after 1 s \(policy time_limit\)/);
    expect(e.durationMs).toBeLessThan(5000);
  });

  (memcg ? t : test.skip)(
    named(
      memcg
        ? 'cgroup memory limit kills, pids limit holds'
        : 'cgroup limits [skipped: needs root and cgroup v1 memory and pids controllers]',
    ),
    async () => {
      const e = await run(
        '/fixtures/alloc.js',
        ['400'],
        opts(rt, {
          policy: { cgroup_mem_max: 128n * 1024n * 1024n },
          reject: false,
        }),
      );
      expect(e).toMatchObject({ code: 'E_SIGNAL', signal: 'SIGKILL' });
      expect(e.stdout).toBe('');
      // The runner owns bwrap's cgroup and can read its OOM counter; nsjail removes its own.
      if (rt === 'bwrap')
        expect((e as SandboxError).message).toMatch(/^killed by SIGKILL \(cgroup memory limit\)/);
      const pids = await sh('for i in 1 2 3 4 5 6; do sleep 0.5 & done; wait', {
        policy: { cgroup_pids_max: 4n },
        reject: false,
      });
      expect(pids.stderr).toMatch(/fork|Resource temporarily unavailable/);
    },
  );

  t(named('exit codes and signals'), async () => {
    const e = await run('/fixtures/exit.sh', ['7'], opts(rt, { reject: false }));
    expect(e).toMatchObject({ code: 'E_EXIT', exitCode: 7, failed: true });
    expect((e as SandboxError).message).toMatch(/^exited 7\n/);
    // pid 1 of a pid namespace ignores its own unhandled signals, so no pid namespace here.
    // nsjail cannot mount proc without its own pid namespace: leave /proc out.
    const mount = TEST_POLICY.mount!.filter((m) => m.fstype !== 'proc');
    const s = await sh('kill -SEGV $$', { policy: { clone_newpid: false, mount }, reject: false });
    expect(s).toMatchObject({ code: 'E_SIGNAL', signal: 'SIGSEGV', exitCode: 139 });
    expect((s as SandboxError).message).toMatch(/^killed by SIGSEGV/);
    const ok = await run('/fixtures/exit.sh', ['0'], opts(rt));
    expect(ok).toMatchObject({ exitCode: 0, failed: false, runtime: rt });
  });

  t(named('stdout and stderr are kept apart'), async () => {
    const r = await run('/fixtures/echo-both.sh', ['out', 'err'], opts(rt));
    expect([r.stdout, r.stderr]).toEqual(['out\n', 'err\n']);
  });

  t(named('100 MB through stdout and stdin without deadlock'), async () => {
    const size = 100 * 1024 * 1024;
    const w = run('/fixtures/write.js', [String(size)], opts(rt, { stdout: 'stream' }));
    let got = 0;
    for await (const c of w.stdout!) got += (c as Buffer).length;
    await w;
    expect(got).toBe(size);
    const c = run('/fixtures/count.sh', [], opts(rt, { stdin: 'pipe' }));
    const chunk = Buffer.alloc(1 << 20, 'y');
    Readable.from(
      (function* () {
        for (let i = 0; i < 100; i++) yield chunk;
      })(),
    ).pipe(c.stdin!);
    expect((await c).stdout).toBe(`${size}\n`);
  });

  t(named('cancel kills the whole tree'), async () => {
    const marker = `ktl-orphan-${rt}-${process.pid}-${Date.now()}`;
    const ac = new AbortController();
    const p = run(
      '/fixtures/grandchild.sh',
      [marker],
      opts(rt, {
        cancelSignal: ac.signal,
        stdout: 'stream',
        reject: false,
      }),
    );
    expect(await firstLine(p.stdout)).toBe('ready');
    expect(markerProcesses(marker).length).toBeGreaterThan(0);
    ac.abort();
    const e = await p;
    expect(e).toMatchObject({ code: 'E_CANCELED', isCanceled: true });
    expect((e as SandboxError).message).toMatch(/^canceled/);
    await new Promise((r) => setTimeout(r, 100));
    expect(markerProcesses(marker)).toEqual([]);
  });

  t(named('a cancel while the jail is still being set up leaves no process behind'), async () => {
    // Early cancels race the runtime's own start-up (bwrap has cloned its child but not yet
    // said which pid it is); killing only the runtime there stranded the half-made child.
    const markers: string[] = [];
    for (const delay of [0, 1, 2, 3, 5, 8, 12, 20, 30, 50]) {
      const marker = `ktl-early-${rt}-${delay}-${process.pid}-${Date.now()}`;
      markers.push(marker);
      const ac = new AbortController();
      const p = run(
        '/fixtures/grandchild.sh',
        [marker],
        opts(rt, {
          // As ktl build's policies: the caller's ids mapped, files made from policy text.
          policy: {
            uidmap: [{ inside_id: '', outside_id: '', count: 1, use_newidmap: false }],
            gidmap: [{ inside_id: '', outside_id: '', count: 1, use_newidmap: false }],
            mount: [
              ...TEST_POLICY.mount!,
              { dst: '/etc/passwd', src_content: Buffer.from('root:x:0:0::/tmp:/bin/sh\n') },
            ],
          },
          cancelSignal: ac.signal,
          reject: false,
        }),
      );
      setTimeout(() => ac.abort(), delay);
      expect(await p).toMatchObject({ isCanceled: true });
    }
    const deadline = Date.now() + 3000;
    while (markers.some((m) => markerProcesses(m).length > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(markers.flatMap((m) => markerProcesses(m))).toEqual([]);
  });

  t(
    named(
      "the jail starts while the caller is busy: files made from policy text don't wait for its event loop",
    ),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ktl-busy-'));
      const before = readdirSync(tmpdir()).filter((n) => n.startsWith('ktl-bwrap-data-'));
      try {
        const p = run(
          '/bin/sh',
          ['-c', 'cat /etc/ktl-busy > /out/seen'],
          opts(rt, {
            binds: [{ src: dir, dst: '/out', readonly: false }],
            policy: {
              mount: [
                ...TEST_POLICY.mount!,
                { dst: '/etc/ktl-busy', src_content: Buffer.from('made from policy text\n') },
              ],
            },
          }),
        );
        // Synchronously busy, as a caller loading modules right after run() is: the command
        // must get through the jail's set-up and run meanwhile (10 s at most, then give up).
        const seen = join(dir, 'seen');
        const deadline = Date.now() + 10_000;
        while (!existsSync(seen) && Date.now() < deadline) {
          // spin: no event loop turn
        }
        const ranWhileBusy = existsSync(seen);
        await p;
        expect(ranWhileBusy).toBe(true);
        expect(readFileSync(seen, 'utf8')).toBe('made from policy text\n');
        // The data files are gone (unlinked as soon as opened).
        expect(readdirSync(tmpdir()).filter((n) => n.startsWith('ktl-bwrap-data-'))).toEqual(
          before,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    30_000,
  );

  t(named('kill(): SIGTERM and SIGKILL take the whole jail down'), async () => {
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      const marker = `ktl-kill-${rt}-${sig}-${process.pid}-${Date.now()}`;
      const p = run(
        '/fixtures/grandchild.sh',
        [marker],
        opts(rt, { stdout: 'stream', reject: false }),
      );
      expect(await firstLine(p.stdout)).toBe('ready');
      expect(p.kill(sig)).toBe(true);
      const e = await p;
      // Without forward_signals nsjail answers SIGTERM by SIGKILLing the jail.
      expect(e).toMatchObject({ code: 'E_SIGNAL', signal: 'SIGKILL', exitCode: 137 });
      expect(p.kill()).toBe(false);
      await new Promise((r) => setTimeout(r, 100));
      expect(markerProcesses(marker)).toEqual([]);
    }
  });

  t(named('silent and stderr_to_null'), async () => {
    const q = await run(
      '/fixtures/echo-both.sh',
      ['out', 'err'],
      opts(rt, {
        policy: { stderr_to_null: true },
      }),
    );
    expect([q.stdout, q.stderr]).toEqual(['out\n', '']);
    const s = await run(
      '/fixtures/echo-both.sh',
      ['out', 'err'],
      opts(rt, { policy: { silent: true } }),
    );
    expect([s.stdout, s.stderr]).toEqual(['', '']);
  });

  (rt === 'bwrap' ? t : test.skip)(
    rt === 'bwrap'
      ? named("without a pid namespace, cancel still takes the command's process group")
      : 'without a pid namespace, cancel takes the process group [skipped: nsjail kills only its direct child]',
    async () => {
      const marker = `ktl-nopidns-${rt}-${process.pid}-${Date.now()}`;
      const ac = new AbortController();
      const mount = TEST_POLICY.mount!.filter((m) => m.fstype !== 'proc');
      const p = run(
        '/fixtures/grandchild.sh',
        [marker],
        opts(rt, {
          policy: { clone_newpid: false, mount },
          cancelSignal: ac.signal,
          stdout: 'stream',
          reject: false,
        }),
      );
      expect(await firstLine(p.stdout)).toBe('ready');
      ac.abort();
      expect(await p).toMatchObject({ code: 'E_CANCELED' });
      await new Promise((r) => setTimeout(r, 100));
      expect(markerProcesses(marker)).toEqual([]);
    },
  );

  t(named('timeout option, killSignal forwarded with forward_signals'), async () => {
    const e = await sh('sleep 30', { timeout: 300, reject: false });
    expect(e).toMatchObject({ code: 'E_TIMEOUT', timedOut: true, signal: 'SIGKILL' });
    expect((e as SandboxError).message).toMatch(/^timed out after 300 ms/);
    const f = run(
      '/fixtures/trap.sh',
      [],
      opts(rt, {
        policy: { forward_signals: true },
        stdout: 'pipe',
        reject: false,
      }),
    );
    await firstLine(f.stdout);
    f.kill('SIGTERM');
    const r = await f;
    expect(r).toMatchObject({ code: 'E_EXIT', exitCode: 42 });
  });

  t(named("runtime failures carry the runtime's own words"), async () => {
    const missing = await sh('true', {
      binds: [{ src: '/nonexistent-ktl', dst: '/x', readonly: true }],
      reject: false,
    });
    expect(missing).toMatchObject({ code: 'E_RUNTIME_FAILED' });
    expect((missing as SandboxError).message).toMatch(
      /^runtime failed before the command started: .*nonexistent-ktl/,
    );
    const noCmd = await run('/nonexistent-cmd', [], opts(rt, { reject: false }));
    expect(noCmd).toMatchObject({ code: 'E_RUNTIME_FAILED' });
    expect((noCmd as SandboxError).message).toMatch(/nonexistent-cmd.*No such file/);
  });

  t(
    named('50 concurrent runs do not interfere; no temp files left'),
    async () => {
      const before = readdirSync(tmpdir()).filter((f) => f.startsWith('ktl-nsjail-cfg-')).length;
      const rs = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          sh(`echo ${i}; hostname`, { policy: { hostname: `h${i}` } }),
        ),
      );
      expect(rs.map((r) => r.stdout)).toEqual(rs.map((_, i) => `${i}\nh${i}\n`));
      const after = readdirSync(tmpdir()).filter((f) => f.startsWith('ktl-nsjail-cfg-')).length;
      expect(after).toBe(before);
      // Not a speed test: 50 jails on 2 busy vCPUs may take longer than jest's 5 s default.
    },
    60_000,
  );

  t(named('logs: stream hands out [sandbox] lines'), async () => {
    const lines: string[] = [];
    await sh('true', { logs: 'stream', onLog: (l) => lines.push(l), policy: { time_limit: 5 } });
    if (rt === 'nsjail') expect(lines.some((l) => l.includes('Executing'))).toBe(true);
    for (const l of lines) expect(l).toMatch(/^\[sandbox\] /);
  });
});
