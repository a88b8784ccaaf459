/**
 * Which host paths a sandboxed `ktl build` needs, read from its own command line: the context
 * and everything else named on it, and nothing more. Each path is bound at the same place
 * inside the jail, so paths on the command line keep their meaning there.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';

export interface PlannedBind {
  src: string;
  dst: string;
  readonly: boolean;
  /** Why it is there, for --sandbox-logs and errors. */
  why: string;
}

export class BindPlanError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'BindPlanError';
  }
}

/** Flags of `ktl build` whose values name host paths, and how each is bound. */
const VALUE_FLAGS = new Set([
  '-f',
  '--file',
  '--build-context',
  '--secret',
  '-o',
  '--output',
  '--iidfile',
  '--metadata-file',
  '--ssh',
  '--sandbox-bind',
  '--sandbox-config',
  '--sandbox-runtime',
  '-t',
  '--tag',
  '--build-arg',
  '--target',
  '--platform',
  '--label',
  '--network',
  '--add-host',
  '--progress',
  '--builder',
  '--cache-from',
  '--cache-to',
]);

function splitFlag(
  argv: readonly string[],
): { flag: string; value: string | undefined; consumed: number }[] {
  const out: { flag: string; value: string | undefined; consumed: number }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      for (const rest of argv.slice(i + 1)) out.push({ flag: '', value: rest, consumed: 1 });
      break;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) out.push({ flag: a.slice(0, eq), value: a.slice(eq + 1), consumed: 1 });
    else if (VALUE_FLAGS.has(a)) {
      out.push({ flag: a, value: argv[i + 1], consumed: 2 });
      i++;
    } else if (a.startsWith('-')) out.push({ flag: a, value: undefined, consumed: 1 });
    else out.push({ flag: '', value: a, consumed: 1 });
  }
  return out;
}

function csv(spec: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) m.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
    else m.set('type', part.trim());
  }
  return m;
}

/** The real path, so a symlink in a user-given path cannot point the bind somewhere else later. */
function real(p: string, cwd: string): string {
  const abs = isAbsolute(p) ? p : resolve(cwd, p);
  return existsSync(abs) ? realpathSync(abs) : abs;
}

/**
 * Plans binds for a `ktl build` argv. Output destinations must exist or are created by the
 * caller before binding (a bind needs something to bind); `ensure` lists them.
 */
export function planBuildBinds(
  argv: readonly string[],
  cwd: string,
): { binds: PlannedBind[]; ensureDirs: string[] } {
  const binds: PlannedBind[] = [];
  const ensureDirs: string[] = [];
  const add = (src: string, readonly: boolean, why: string) => {
    const s = real(src, cwd);
    binds.push({ src: s, dst: isAbsolute(src) ? src : resolve(cwd, src), readonly, why });
  };
  const parts = splitFlag(argv);
  const positional = parts.filter((p) => p.flag === '' && p.value !== undefined);
  if (positional.length > 0) add(positional[0]!.value!, true, 'build context');
  for (const { flag, value } of parts) {
    if (value === undefined || flag === '') continue;
    switch (flag) {
      case '-f':
      case '--file':
        if (value !== '-') add(value, true, 'Dockerfile');
        break;
      case '--build-context': {
        const src = value.slice(value.indexOf('=') + 1);
        if (!/^[a-z-]+:\/\//.test(src)) add(src, true, `named context ${value.split('=')[0]}`);
        break;
      }
      case '--secret': {
        const m = csv(value);
        const src = m.get('src') ?? m.get('source');
        if (src) add(src, true, `secret ${m.get('id') ?? ''}`.trim());
        break;
      }
      case '-o':
      case '--output': {
        const m = csv(value);
        const dest = m.get('dest');
        if (!dest || dest === '-') break;
        const type = m.get('type') ?? 'local';
        // Directories are bound themselves; a file destination through its parent directory.
        const dir =
          type === 'local' || (type === 'oci' && m.get('tar') === 'false')
            ? dest
            : dirname(resolve(cwd, dest));
        ensureDirs.push(resolve(cwd, dir));
        add(dir, false, `output ${type}`);
        break;
      }
      case '--iidfile':
      case '--metadata-file': {
        const dir = dirname(resolve(cwd, value));
        ensureDirs.push(dir);
        add(dir, false, flag.slice(2));
        break;
      }
      case '--sandbox-bind': {
        const [src, dst, mode, ...extra] = value.split(':');
        if (
          !src ||
          !dst ||
          extra.length > 0 ||
          (mode !== undefined && mode !== 'ro' && mode !== 'rw')
        ) {
          throw new BindPlanError(
            `--sandbox-bind ${value}: expected HOST:GUEST[:ro|rw]`,
            'e.g. --sandbox-bind /srv/certs:/certs:ro',
          );
        }
        if (!isAbsolute(dst))
          throw new BindPlanError(
            `--sandbox-bind ${value}: GUEST must be an absolute path`,
            'e.g. --sandbox-bind ./certs:/certs:ro',
          );
        if (!existsSync(resolve(cwd, src)))
          throw new BindPlanError(
            `--sandbox-bind ${value}: ${resolve(cwd, src)} does not exist`,
            'create it or fix the path',
          );
        binds.push({ src: real(src, cwd), dst, readonly: mode === 'ro', why: '--sandbox-bind' });
        break;
      }
      default:
        break;
    }
  }
  for (const b of binds) {
    if (b.readonly && !existsSync(b.src)) {
      throw new BindPlanError(
        `${b.why}: ${b.src} does not exist`,
        'check the path on the command line',
      );
    }
    if (b.why === 'build context' && !statSync(b.src).isDirectory()) {
      throw new BindPlanError(
        `build context ${b.src} is not a directory`,
        'pass the directory that holds the Dockerfile',
      );
    }
  }
  return { binds, ensureDirs };
}
