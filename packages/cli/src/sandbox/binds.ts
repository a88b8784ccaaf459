/**
 * Which host paths a sandboxed `ktl build` needs, read from its own command line: the context
 * and everything else named on it, and nothing more. Each path is bound at the same place
 * inside the jail, so paths on the command line keep their meaning there.
 *
 * A path typed inside the current directory must also *be* inside it: a symlink in the
 * working tree (which may be an untrusted repository) that points out of it would turn
 * `--build-context assets=./assets` into a bind of whatever host directory the link names.
 * Such a path is refused; naming the target itself (or --sandbox-bind) is the explicit way.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { type OutputSpec, parseOutput } from '../build/output-spec';

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
  if (existsSync(abs)) return realpathSync(abs);
  // Not there yet (an output): the real path of the nearest existing ancestor, plus the rest.
  const parent = dirname(abs);
  return parent === abs ? abs : join(real(parent, cwd), basename(abs));
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);

/** Refuses a path typed inside `cwd` whose real path leaves it (a symlink out of the tree). */
function refuseEscape(
  typed: string,
  src: string,
  cwd: string,
  why: string,
  readonly: boolean,
): void {
  const abs = isAbsolute(typed) ? typed : resolve(cwd, typed);
  const cwdReal = existsSync(cwd) ? realpathSync(cwd) : cwd;
  if ((under(abs, cwd) || under(abs, cwdReal)) && !under(src, cwdReal)) {
    throw new BindPlanError(
      `${why}: ${typed} is inside the current directory but resolves to ${src}, outside it (a symlink); the sandbox does not follow links out of the working tree`,
      `if you mean to share ${src}, name it directly or add --sandbox-bind ${src}:${src}:${readonly ? 'ro' : 'rw'}`,
    );
  }
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
    refuseEscape(src, s, cwd, why, readonly);
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
        // The same parser as the build's own (a bare PATH is type=local,dest=PATH), so the
        // bind and the export always agree on where the files go.
        let spec: OutputSpec;
        try {
          spec = parseOutput(value, { cwd, normalizeName: (n) => n }, flag);
        } catch {
          break; // refused by the option parser before any sandbox is planned
        }
        if (spec.type === 'image' || spec.type === 'cacheonly') break;
        // Directories are bound themselves; a file destination through its parent directory.
        const dir =
          spec.type === 'local' || (spec.type === 'oci' && spec.attrs.tar === 'false')
            ? spec.dest
            : dirname(spec.dest);
        ensureDirs.push(dir);
        add(dir, false, `output ${spec.type}`);
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
