/**
 * What a user of any oclif CLI expects: topics described in their own words, `ktl help ...`,
 * and shell completion (run in real bash and zsh against the script `ktl completion` prints).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, repoRoot } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'ktl-conventions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages', 'cli', 'package.json'), 'utf8'));
const topics = pkg.oclif.topics as Record<
  string,
  { description: string; subtopics?: Record<string, { description: string }> }
>;

describe('topics', () => {
  test('ktl --help describes each topic in its own words, not a command summary', () => {
    const r = ktl(['--help']);
    expect(r.code).toBe(0);
    for (const [name, t] of Object.entries(topics))
      expect(r.stdout).toMatch(new RegExp(`\\n  ${name} +${t.description}\\n`));
    expect(r.stdout).not.toContain("Show the builder's build cache");
  });

  test('a nested topic is described in its parent help and heads its own', () => {
    const policy = topics.sandbox!.subtopics!.policy!.description;
    expect(ktl(['sandbox', '--help']).stdout).toMatch(
      new RegExp(`\\n  sandbox policy +${policy}\\n`),
    );
    const own = ktl(['sandbox', 'policy', '--help']).stdout;
    expect(own.split('\n')[0]).toBe(policy);
    expect(own).not.toMatch(/^Say in plain words/);
  });
});

describe('ktl help', () => {
  test.each([
    [['build'], ['build', '--help']],
    [
      ['sandbox', 'policy', 'fmt'],
      ['sandbox', 'policy', 'fmt', '--help'],
    ],
    [
      ['sandbox', 'policy'],
      ['sandbox', 'policy', '--help'],
    ],
    [[], ['--help']],
  ])('ktl help %j shows what --help shows', (words, flagged) => {
    const r = ktl(['help', ...words]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(ktl(flagged).stdout);
    expect(r.stdout.length).toBeGreaterThan(100);
  });

  test('an unknown subject: exit 2, named, and where to look', () => {
    const r = ktl(['help', 'biuld']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no command or topic "biuld" (ktl help lists them)');
  });

  test('help and completion are listed', () => {
    const out = ktl(['--help']).stdout;
    expect(out).toMatch(/\n {2}help +Show help for ktl, a topic or a command\./);
    expect(out).toMatch(/\n {2}completion +Print the shell completion script/);
  });
});

function script(shell: string): string {
  const r = ktl(['completion', shell]);
  if (r.code !== 0 || r.stderr) throw new Error(`ktl completion ${shell}: ${r.code}: ${r.stderr}`);
  const f = join(dir, `ktl.${shell}`);
  writeFileSync(f, r.stdout);
  return f;
}

/** Where completion cases run: the cwd holds one file, so "files" is a known answer. */
const cwd = mkdtempSync(join(dir, 'cwd-'));
writeFileSync(join(cwd, 'policy.cfg'), 'name: "x"\n');

// [words typed, with the last one being completed; what completion offers]
const cases: [string[], string[]][] = [
  [
    ['ktl', ''],
    ['build', 'builder', 'completion', 'help', 'sandbox'],
  ],
  [['ktl', 'sa'], ['sandbox']],
  [
    ['ktl', 'sandbox', ''],
    ['doctor', 'policy', 'run'],
  ],
  [
    ['ktl', 'sandbox', 'policy', ''],
    ['explain', 'fmt', 'validate'],
  ],
  [
    ['ktl', 'sandbox', 'policy', 'fmt', '-'],
    ['--help', '--write', '-w', '--check'],
  ],
  [
    ['ktl', 'sandbox', 'policy', 'validate', '--arch', ''],
    ['x86_64', 'aarch64'],
  ],
  [['ktl', 'sandbox', 'run', '--runtime', 'b'], ['bwrap']],
  [
    ['ktl', 'builder', 'start', '--engine', ''],
    ['auto', 'dockerd', 'buildkitd'],
  ],
  [
    ['ktl', 'completion', ''],
    ['bash', 'zsh'],
  ],
  [
    ['ktl', 'help', 'sandbox', ''],
    ['doctor', 'policy', 'run'],
  ],
  [['ktl', 'sandbox', 'policy', 'validate', 'pol'], ['policy.cfg']],
  [['ktl', 'sandbox', 'policy', 'validate', '--arch', 'x86_64', ''], ['policy.cfg']],
];

const FIXTURES = join(repoRoot, 'packages', 'cli', 'test', 'fixtures');

/** What `shell` offers for `words` (the last one being completed), run in `cwd`. */
function offered(shell: 'bash' | 'zsh', file: string, words: string[], extra: string[] = []) {
  const r =
    shell === 'bash'
      ? spawnSync('bash', [join(FIXTURES, 'complete-bash.sh'), file, ...words], {
          cwd,
          encoding: 'utf8',
        })
      : spawnSync('zsh', ['-f', join(FIXTURES, 'complete-zsh.zsh'), file, ...extra, ...words], {
          cwd,
          encoding: 'utf8',
        });
  expect(r.stderr).toBe('');
  return r.stdout.split('\n').filter(Boolean);
}

describe('ktl completion bash', () => {
  const f = script('bash');

  test('is valid bash, registered for ktl', () => {
    const r = spawnSync('bash', ['-n', f], { encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const p = spawnSync('bash', ['-c', 'source "$1"; complete -p ktl', 'bash', f], {
      encoding: 'utf8',
    });
    expect(p.stdout).toContain('-F _ktl ktl');
  });

  test.each(cases)('%j offers %j', (words, expected) => {
    expect(offered('bash', f, words)).toEqual(expected);
  });

  test('--flag=value: bash splits at "=", the value is still completed', () => {
    const words = ['ktl', 'sandbox', 'policy', 'explain', '--runtime', '=', 'n'];
    expect(offered('bash', f, words)).toEqual(['nsjail']);
  });
});

const zsh = spawnSync('zsh', ['--version'], { encoding: 'utf8' });
const zshTest = zsh.status === 0 ? test : test.skip;
const zshLabel = (s: string) =>
  zsh.status === 0 ? s : `${s} (skipped: no zsh on this machine; apt-get install zsh)`;

describe('ktl completion zsh', () => {
  const f = script('zsh');

  zshTest(zshLabel('is valid zsh and registers _ktl with compinit'), () => {
    expect(spawnSync('zsh', ['-n', f], { encoding: 'utf8' }).status).toBe(0);
    const reg = spawnSync(
      'zsh',
      [
        '-f',
        '-c',
        'autoload -U compinit && compinit -u -D; source "$1"; print -r -- $_comps[ktl]',
        'zsh',
        f,
      ],
      { encoding: 'utf8' },
    );
    expect(reg.stdout.trim()).toBe('_ktl');
  });

  zshTest.each(cases)(zshLabel('%j offers %j'), (words, expected) => {
    // zsh filters by the typed prefix itself; the script offers every candidate.
    const prefix = words[words.length - 1]!;
    expect(offered('zsh', f, words).filter((w) => w.startsWith(prefix))).toEqual(expected);
  });

  zshTest(zshLabel('subcommands come with what they do'), () => {
    expect(offered('zsh', f, ['ktl', 'sandbox', 'policy', ''], ['--described'])).toContain(
      'fmt:Format nsjail policies, keeping comments and field order.',
    );
  });
});

test('ktl completion refuses a shell it has no script for', () => {
  const r = ktl(['completion', 'fish']);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('Expected fish to be one of: bash, zsh');
});
