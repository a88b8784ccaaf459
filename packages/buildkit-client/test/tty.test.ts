/**
 * The tty renderer, driven by Status streams recorded from real builds (test/fixtures/status)
 * and by hand-made ones, its output played into a model terminal (screen.ts) that interprets
 * the cursor movement and erasing it emits; frames compared with their timings replaced.
 */
import { describe, expect, test } from '@jest/globals';
import type { StatusResponse, Vertex } from '../src/gen/moby/buildkit/v1/control';
import { describeFailure, formatFailure } from '../src/progress/failure';
import { sanitizeLine, sanitizeText, type TtyOptions, TtyRenderer } from '../src/progress/tty';
import { Screen, stripTimings } from './screen';
import { loadRecording } from './status-fixtures';

interface Run {
  out: string;
  /** The whole terminal (scrollback and screen) after each update, timings stripped. */
  frames: string[];
  r: TtyRenderer;
  clock: { t: number };
}

function play(
  statuses: readonly StatusResponse[],
  opts: Omit<TtyOptions, 'rows' | 'columns'> & {
    cols?: number;
    rows?: number;
    stepMs?: number;
  } = {},
): Run {
  const { cols = 80, rows = 40, stepMs = 100, ...ttyOpts } = opts;
  const clock = { t: 0 };
  const run: Run = { out: '', frames: [], r: undefined as unknown as TtyRenderer, clock };
  run.r = new TtyRenderer(
    (s) => {
      run.out += s;
    },
    { now: () => clock.t, timer: false, columns: () => cols, rows: () => rows, ...ttyOpts },
  );
  for (const s of statuses) {
    clock.t += stepMs;
    run.r.update(s);
    run.frames.push(stripTimings(new Screen(cols, rows).feed(run.out).text()));
  }
  clock.t += 100;
  run.r.end();
  return run;
}

const screenOf = (out: string, cols = 80, rows = 40) =>
  stripTimings(new Screen(cols, rows).feed(out).text());

const at = (ms: number) => new Date(1_700_000_000_000 + ms);
const vtx = (p: Partial<Vertex>): Vertex => ({
  digest: 'sha256:a',
  inputs: [],
  name: '[1/1] RUN step',
  cached: false,
  started: undefined,
  completed: undefined,
  error: '',
  progressGroup: undefined,
  ...p,
});
const st = (p: Partial<StatusResponse>): StatusResponse => ({
  vertexes: [],
  statuses: [],
  logs: [],
  warnings: [],
  ...p,
});
const log = (msg: string, ms: number, vertex = 'sha256:a') => ({
  vertex,
  timestamp: at(ms),
  stream: 1n,
  msg: Buffer.from(msg),
});

describe('tty renderer on recorded builds', () => {
  test('a fresh build: running steps show their last log lines, the final frame lists every step', () => {
    const { out, frames } = play(loadRecording('fresh').statuses);
    expect(screenOf(out)).toBe(
      [
        '[+] Building N.Ns (8/8) FINISHED',
        ' => [internal] load build definition from Dockerfile N.Ns',
        ' => => transferring dockerfile: 200B N.Ns',
        ' => [internal] load metadata for 127.0.0.1:5000/ktl/busybox:latest N.Ns',
        ' => [internal] load .dockerignore N.Ns',
        ' => => transferring context: 2B N.Ns',
        ' => [internal] load build context N.Ns',
        ' => => transferring context: 42B N.Ns',
        ' => CACHED [base 1/3] FROM 127.0.0.1:5000/ktl/busybox:latest@sha256:7d67d0 N.Ns',
        ' => => resolve 127.0.0.1:5000/ktl/busybox:latest@sha256:7d67d07e452921aa5d N.Ns',
        ' => [base 2/3] RUN echo building; echo to-stderr >&2; printf "no newline" N.Ns',
        ' => [base 3/3] COPY hello.txt /hello.txt N.Ns',
        ' => [stage-1 1/1] RUN cat /hello.txt N.Ns',
      ].join('\n'),
    );
    // While the RUN step ran, its output showed under it, the last line before its newline too.
    const running = frames.find((f) => f.includes('=> => # no newline'));
    expect(running).toContain(
      [
        ' => [base 2/3] RUN echo building; echo to-stderr >&2; printf "no newline" N.Ns',
        ' => => # building',
        ' => => # to-stderr',
        ' => => # no newline',
      ].join('\n'),
    );
    expect(running).toMatch(/^\[\+\] Building N\.Ns \(\d\/8\)$/m);
    expect(frames.some((f) => f.includes(' => => # hello'))).toBe(true);
    // Every frame was drawn over the previous one: one header on the terminal, never two.
    for (const f of frames) expect(f.match(/\[\+\] Building/g)).toHaveLength(1);
  });

  test('a cached build: CACHED steps', () => {
    const text = screenOf(play(loadRecording('cached').statuses).out);
    for (const s of [
      'CACHED [base 2/3] RUN echo building; echo to-stderr >&2; printf "no ne N.Ns',
      'CACHED [base 3/3] COPY hello.txt /hello.txt N.Ns',
      'CACHED [stage-1 1/1] RUN cat /hello.txt N.Ns',
    ]) {
      expect(text).toContain(` => ${s}`);
    }
    expect(text).not.toContain('=> => #');
  });

  test('a failed RUN: ERROR in the last frame, then the failure report as plain prints it', () => {
    const rec = loadRecording('fail');
    const { out, r } = play(rec.statuses);
    const report = formatFailure(describeFailure(rec.error!, r.tracker));
    expect(screenOf(out + report).replace(/^\d+\.\d{3} /gm, 'T ')).toBe(
      [
        '[+] Building N.Ns (5/5) FINISHED',
        ' => [internal] load build definition from Dockerfile N.Ns',
        ' => => transferring dockerfile: 120B N.Ns',
        ' => [internal] load metadata for 127.0.0.1:5000/ktl/busybox:latest N.Ns',
        ' => [internal] load .dockerignore N.Ns',
        ' => => transferring context: 2B N.Ns',
        ' => CACHED [1/2] FROM 127.0.0.1:5000/ktl/busybox:latest@sha256:7d67d07e452 N.Ns',
        ' => => resolve 127.0.0.1:5000/ktl/busybox:latest@sha256:7d67d07e452921aa5d N.Ns',
        ' => ERROR [2/2] RUN echo one &&   echo boom >&2 && exit 3 N.Ns',
        '------',
        ' > [2/2] RUN echo one &&   echo boom >&2 && exit 3:',
        'T one',
        'T boom',
        '------',
        'Dockerfile:2',
        '--------------------',
        '   1 |     FROM 127.0.0.1:5000/ktl/busybox:latest',
        '   2 | >>> RUN echo one && \\',
        '   3 | >>>   echo boom >&2 && exit 3',
        '   4 |',
        '--------------------',
      ].join('\n'),
    );
    expect(describeFailure(rec.error!, r.tracker).stepIndex).toBeGreaterThan(0);
    // Colors: the ERROR line red.
    expect(out).toMatch(/\x1b\[31m => ERROR \[2\/2\] RUN/);
  });
});

describe('tty renderer', () => {
  test('lines are cut to the terminal width; times stay right-aligned in the last columns', () => {
    const name = `[1/1] RUN ${'x'.repeat(100)}`;
    const { out } = play(
      [
        st({ vertexes: [vtx({ name, started: at(0) })] }),
        st({ logs: [log(`${'y'.repeat(100)}\n`, 100)] }),
      ],
      { cols: 40 },
    );
    const lines = new Screen(40, 40).feed(out).text().split('\n');
    // Header, the step (still running when the stream ended), its log; nothing wrapped.
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^ => \[1\/1\] RUN x+ +\d+\.\ds$/);
    expect(lines[1]).toHaveLength(39);
    expect(lines[2]).toBe(` => => # ${'y'.repeat(30)}`);
  });

  test('at most 6 log lines of a running step; none once it is done', () => {
    const logs = Array.from({ length: 9 }, (_, i) => log(`line ${i + 1}\n`, 10 * i));
    const run = play([st({ vertexes: [vtx({ started: at(0) })] }), st({ logs })]);
    expect(run.frames[1]).toBe(
      [
        '[+] Building N.Ns (0/1)',
        ' => [1/1] RUN step N.Ns',
        ...[4, 5, 6, 7, 8, 9].map((i) => ` => => # line ${i}`),
      ].join('\n'),
    );
    const done = play([
      st({ vertexes: [vtx({ started: at(0) })] }),
      st({ logs }),
      st({ vertexes: [vtx({ started: at(0), completed: at(1000) })] }),
    ]);
    expect(done.frames[1]).toBe(run.frames[1]);
    expect(screenOf(done.out)).toBe(
      ['[+] Building N.Ns (1/1) FINISHED', ' => [1/1] RUN step N.Ns'].join('\n'),
    );
  });

  test('redraws at most every 100 ms; an unchanged frame writes nothing', () => {
    const clock = { t: 0 };
    let out = '';
    const r = new TtyRenderer(
      (s) => {
        out += s;
      },
      { now: () => clock.t, timer: false, columns: () => 80, rows: () => 24 },
    );
    r.update(st({ vertexes: [vtx({ started: at(0) })] }));
    const first = out;
    expect(first).toContain(' => [1/1] RUN step');
    clock.t += 50;
    r.update(st({ logs: [log('soon\n', 50)] }));
    expect(out).toBe(first); // too soon: not drawn yet
    clock.t += 50;
    r.refresh(); // what the timer does
    expect(out).not.toBe(first);
    expect(screenOf(out)).toContain(' => => # soon');
    const second = out;
    r.refresh(); // same time, same frame
    expect(out).toBe(second);
    // A new frame rewrites only the lines that changed: here the header and the step's time.
    clock.t += 100;
    r.refresh();
    const delta = out.slice(second.length);
    expect(delta).toContain('[+] Building 0.2s (0/1)');
    expect(delta).not.toContain('soon');
    r.end();
  });

  test('NO_COLOR: no SGR codes, cursor movement still', () => {
    const statuses = [
      st({ vertexes: [vtx({ started: at(0) })] }),
      st({ vertexes: [vtx({ started: at(0), completed: at(5), error: 'boom' })] }),
    ];
    const plain = play(statuses, { color: false }).out;
    expect(plain).not.toMatch(/\x1b\[[0-9;]*m/);
    expect(plain).toMatch(/\x1b\[\d+A/);
    expect(play(statuses).out).toMatch(/\x1b\[31m/);
  });

  test('the frame never outgrows the terminal: finished steps make room; the last frame lists all', () => {
    const { out, frames } = play(loadRecording('fresh').statuses, { rows: 8 });
    for (const f of frames) {
      expect(f.split('\n').length).toBeLessThanOrEqual(7);
      expect(f.startsWith('[+] Building')).toBe(true);
    }
    expect(frames.some((f) => f.includes('=> => # building'))).toBe(true);
    const last = stripTimings(new Screen(80, 8).feed(out).text()).split('\n');
    expect(last[0]).toBe('[+] Building N.Ns (8/8) FINISHED');
    expect(last).toHaveLength(13);
  });

  test('warnings are listed after the last frame', () => {
    const run = play([
      st({ vertexes: [vtx({ started: at(0), completed: at(1) })] }),
      st({
        warnings: [
          {
            vertex: 'sha256:a',
            level: 1n,
            short: Buffer.from('FromAsCasing: mixed \x1b[2Jcase'),
            detail: [],
            url: '',
            info: {
              filename: 'Dockerfile',
              data: new Uint8Array(),
              definition: undefined,
              language: '',
            },
            ranges: [{ start: { line: 3, character: 0 }, end: undefined }],
          },
        ],
      }),
    ]);
    expect(screenOf(run.out).split('\n').slice(2)).toEqual([
      '1 warning found:',
      ' - FromAsCasing: mixed case (Dockerfile:3)',
    ]);
  });
});

describe('build output cannot drive the terminal', () => {
  test.each([
    ['plain text', 'plain text'],
    ['tab\there', 'tab     here'],
    ['\x1b[2J\x1b[Hcleared', 'cleared'],
    ['up\x1b[3A\x1b[Kover', 'upover'],
    ['\x1b]0;title\x07after osc', 'after osc'],
    ['\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\', 'link'],
    ['\x1bPdcs stuff\x1b\\after', 'after'],
    ['\x1b7saved\x1b8 \x1bc', 'saved '],
    ['\x1b[31mred\x1b[0m', 'red'],
    ['10%\r50%\r100%', '100%'],
    ['done\r', 'done'],
    ['bell\x07 bs\b nul\x00 del\x7f c1\x9b2J', 'bell bs nul del c12J'],
    ['lone esc\x1b', 'lone esc'],
  ])('sanitizeLine(%j) = %j', (raw, clean) => expect(sanitizeLine(raw)).toBe(clean));

  test('a hostile RUN step: its escapes never reach the terminal, the frame stays intact', () => {
    const hostile = [
      '\x1b[2J\x1b[Hwiped the screen\n',
      '\x1b[10A\x1b[2Kmoved up\n',
      '\x1b]0;pwned\x07title set\n',
      'progress 10%\rprogress 99%\n',
      '\x9b5Abye\x1bc\n',
    ];
    const { out, frames } = play([
      st({ vertexes: [vtx({ started: at(0) })] }),
      st({ logs: hostile.map((h, i) => log(h, i)) }),
      st({ vertexes: [vtx({ started: at(0), completed: at(1), name: 'x\x1b[1A\rRUN' })] }),
    ]);
    // Every escape in the output is one of the renderer's own: cursor up/down, erase line, SGR.
    const escapes = out.match(/\x1b[^\x1b]{0,6}/g) ?? [];
    for (const e of escapes) expect(e).toMatch(/^\x1b\[(\d+[AB]|K|\d+m)/);
    expect(out).not.toMatch(/[\x00-\x09\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f-\x9f]/);
    expect(frames[1]).toBe(
      [
        '[+] Building N.Ns (0/1)',
        ' => [1/1] RUN step N.Ns',
        ' => => # wiped the screen',
        ' => => # moved up',
        ' => => # title set',
        ' => => # progress 99%',
        ' => => # 5Abye',
      ].join('\n'),
    );
    expect(screenOf(out)).toBe('[+] Building N.Ns (1/1) FINISHED\n => RUN N.Ns');
  });

  test('sanitizeText cleans each line of a block (the failure report on a terminal)', () => {
    expect(sanitizeText('------\n0.1 \x1b[2Jboom\r\n------\n')).toBe('------\n0.1 boom\n------\n');
  });
});
