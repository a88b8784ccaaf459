/**
 * The plain renderer and the failure report, fed Status streams recorded from real builds on
 * the rig engine (test/fixtures/status; re-record with `ktl build --progress rawjson`).
 */
import { describe, expect, test } from '@jest/globals';
import { BuildkitError } from '../src/errors';
import type { StatusResponse, Vertex } from '../src/gen/moby/buildkit/v1/control';
import { describeFailure, formatFailure, sourceExcerpt } from '../src/progress/failure';
import { PlainRenderer, QuietRenderer } from '../src/progress/plain';
import { humanSize } from '../src/progress/tracker';
import { loadRecording } from './status-fixtures';

function render(name: string): { out: string; r: PlainRenderer; error: BuildkitError | undefined } {
  const rec = loadRecording(name);
  let out = '';
  const r = new PlainRenderer((s) => {
    out += s;
  });
  for (const s of rec.statuses) r.update(s);
  r.end();
  return { out, r, error: rec.error };
}

const lines = (s: string) => s.split('\n');

describe('plain renderer on recorded builds', () => {
  test('a fresh build: headers, logs with times, statuses, DONE, blank line between steps', () => {
    const { out } = render('fresh');
    expect(out.startsWith('#1 [internal] load build definition from Dockerfile\n')).toBe(true);
    expect(out).toMatch(/^#1 transferring dockerfile: 200B( 0\.\ds)? done$/m);
    expect(out).toMatch(/^#1 DONE \d+\.\ds\n\n#2 \[internal\] load metadata for /m);
    const run = out.slice(out.lastIndexOf('#6 [base 2/3] RUN echo building'));
    expect(
      lines(run)
        .slice(1, 5)
        .map((l) => l.replace(/ \d+\.\d{3} /, ' T ')),
    ).toEqual([
      '#6 T building',
      '#6 T to-stderr',
      '#6 T no newline', // a last line without "\n" is printed when the step ends
      expect.stringMatching(/^#6 DONE \d+\.\ds$/),
    ]);
    expect(out).toContain('#8 [stage-1 1/1] RUN cat /hello.txt\n');
    expect(out).toMatch(/^#8 \d+\.\d{3} hello$/m);
    // Output that moves to another step before the first ended says so.
    expect(out).toMatch(/^#4 \.\.\.\n\n#5 \[internal\] load build context$/m);
    // Every step that ran is numbered once, in order of first appearance.
    const headers = [...out.matchAll(/^#(\d+) \[/gm)].map((m) => Number(m[1]));
    expect([...new Set(headers)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('a second build: every Dockerfile step CACHED, none DONE', () => {
    const { out, r } = render('cached');
    for (const step of ['[base 2/3] RUN', '[base 3/3] COPY', '[stage-1 1/1] RUN']) {
      const s = [...r.tracker.steps.values()].find((x) => x.name.startsWith(step))!;
      expect(s.cached).toBe(true);
      expect(out).toContain(`#${s.index} ${s.name}\n#${s.index} CACHED\n`);
    }
    expect(out).not.toMatch(/^#\d+ \d+\.\d{3} /m); // no step ran, so no logs
  });

  test('a failed RUN: ERROR line, then the report names step, lines and last logs', () => {
    const { out, r, error } = render('fail');
    expect(out).toContain(
      '#5 ERROR: process "/bin/sh -c echo one &&   echo boom >&2 && exit 3" did not complete successfully: exit code: 3\n',
    );
    const rep = describeFailure(error!, r.tracker);
    expect(rep.step).toBe('[2/2] RUN echo one &&   echo boom >&2 && exit 3');
    expect(rep.stepIndex).toBe(5);
    expect(rep.exitCode).toBe(3);
    expect(rep.source?.startLine).toBe(2);
    expect(rep.source?.endLine).toBe(3);
    expect(rep.logs.map((l) => l.replace(/^\d+\.\d{3} /, ''))).toEqual(['one', 'boom']);
    const text = formatFailure(rep).replace(/^\d+\.\d{3} /gm, 'T ');
    expect(text).toBe(
      [
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
        '   4 |     ',
        '--------------------',
        '',
      ].join('\n'),
    );
  });

  test('quiet prints nothing but still tracks steps for the failure report', () => {
    const rec = loadRecording('fail');
    const q = new QuietRenderer();
    for (const s of rec.statuses) q.update(s);
    expect(describeFailure(rec.error!, q.tracker).step).toMatch(/^\[2\/2\] RUN/);
  });
});

const at = (ms: number) => new Date(1_700_000_000_000 + ms);
const vtx = (p: Partial<Vertex>): Vertex => ({
  digest: 'sha256:a',
  inputs: [],
  name: 'step',
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
const log = (msg: string, ms: number) => ({
  vertex: 'sha256:a',
  timestamp: at(ms),
  stream: 1n,
  msg: Buffer.from(msg),
});

describe('plain renderer details', () => {
  test('lines split across log chunks are joined; CRLF trimmed; a vertex resent is not repeated', () => {
    let out = '';
    const r = new PlainRenderer((s) => {
      out += s;
    });
    r.update(st({ vertexes: [vtx({ started: at(0) })] }));
    r.update(st({ logs: [log('hel', 100)] }));
    r.update(st({ logs: [log('lo\r\nwor', 200)] }));
    r.update(st({ logs: [log('ld\n', 300)] }));
    const done = vtx({ started: at(0), completed: at(1500) });
    r.update(st({ vertexes: [done] }));
    r.update(st({ vertexes: [done] }));
    r.end();
    expect(out).toBe('#1 step\n#1 0.100 hello\n#1 0.200 world\n#1 DONE 1.5s\n\n');
  });

  test('a step never started is not shown; CANCELED for a cancelled one', () => {
    let out = '';
    const r = new PlainRenderer((s) => {
      out += s;
    });
    r.update(st({ vertexes: [vtx({})] }));
    expect(out).toBe('');
    r.update(st({ vertexes: [vtx({ started: at(0), error: 'context canceled' })] }));
    expect(out).toBe('#1 step\n#1 CANCELED\n\n');
  });

  test('warnings are listed at the end with their Dockerfile line', () => {
    let out = '';
    const r = new PlainRenderer((s) => {
      out += s;
    });
    r.update(
      st({
        warnings: [
          {
            vertex: 'sha256:x',
            level: 1n,
            short: Buffer.from('FromAsCasing: mixed case'),
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
    );
    r.end();
    expect(out).toBe('1 warning found:\n - FromAsCasing: mixed case (Dockerfile:3)\n');
  });

  test.each([
    [0, '0B'],
    [42, '42B'],
    [999, '999B'],
    [1234, '1.23kB'],
    [1_234_567, '1.23MB'],
    [5_000_000_000, '5GB'],
  ])('humanSize(%d) = %s', (n, s) => expect(humanSize(n)).toBe(s));
});

describe('failure report', () => {
  const text = 'FROM a\nRUN b\nRUN c\nRUN d\nRUN e\nRUN f\n';
  test('one line gets up to 4 lines of context, like buildkit', () => {
    expect(sourceExcerpt('Dockerfile', text, 3, 3).excerpt.slice(2, -1)).toEqual([
      '   1 |     FROM a',
      '   2 |     RUN b',
      '   3 | >>> RUN c',
      '   4 |     RUN d',
      '   5 |     RUN e',
    ]);
  });

  test('without Vertex and Source details (older daemons): the erroring step, the exit code from the text', () => {
    const r = new PlainRenderer(() => {});
    r.update(st({ vertexes: [vtx({ name: '[2/2] RUN false', started: at(0), error: 'x' })] }));
    const rep = describeFailure(
      new BuildkitError('process "/bin/sh -c false" did not complete successfully: exit code: 1', {
        code: 'E_SOLVE',
      }),
      r.tracker,
    );
    expect(rep).toMatchObject({ step: '[2/2] RUN false', exitCode: 1, source: undefined });
  });

  test('a Dockerfile parse error: source location, no step', () => {
    const data = Buffer.from('FROM a\nRUNN x\n').toString('base64');
    const rep = describeFailure(
      new BuildkitError('dockerfile parse error on line 2: unknown instruction: RUNN', {
        code: 'E_SOLVE',
        details: [
          {
            typeUrl: 'github.com/moby/buildkit/errdefs.Source+json',
            json: {
              info: { filename: 'Dockerfile', data },
              ranges: [{ start: { line: 2 }, end: { line: 2 } }],
            },
          },
        ],
      }),
    );
    expect(rep.step).toBeUndefined();
    expect(formatFailure(rep)).toContain('   2 | >>> RUNN x');
  });
});
