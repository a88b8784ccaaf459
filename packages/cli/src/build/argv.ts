/**
 * `ktl build`'s command line read without oclif, for the sandbox's early start (src/early.ts):
 * the jail starts while the CLI bundle is still loading, from this reading of argv. oclif
 * parses the same argv afterwards and the early jail is only used when both readings agree
 * exactly (`sameCommandLine`), so this reader only has to be right when it answers: anything
 * it is not sure to read as oclif does (a flag form it does not know, a repeated single flag,
 * `--`, a value that looks like a flag) makes it decline, and the build starts the usual way.
 *
 * The table mirrors `Build.flags` (test/build-argv.test.ts checks it flag by flag).
 */

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly char?: string;
  readonly multiple?: boolean;
  readonly default?: string;
  readonly options?: readonly string[];
}

const str: FlagSpec = { type: 'string' };
const many: FlagSpec = { type: 'string', multiple: true };
const bool: FlagSpec = { type: 'boolean' };

export const BUILD_FLAG_TABLE: Readonly<Record<string, FlagSpec>> = {
  file: { type: 'string', char: 'f' },
  tag: { type: 'string', char: 't', multiple: true },
  'build-arg': many,
  target: str,
  platform: many,
  attest: many,
  provenance: str,
  sbom: str,
  label: many,
  'no-cache': bool,
  'keep-setid': bool,
  pull: bool,
  'build-context': many,
  secret: many,
  ssh: many,
  network: str,
  allow: many,
  'add-host': many,
  output: { type: 'string', char: 'o', multiple: true },
  'cache-from': many,
  'cache-to': many,
  load: bool,
  push: bool,
  progress: { type: 'string', default: 'auto' },
  quiet: { type: 'boolean', char: 'q' },
  builder: str,
  context: str,
  tlscacert: str,
  tlscert: str,
  tlskey: str,
  tlsdir: str,
  tlsservername: str,
  iidfile: str,
  'metadata-file': str,
  sandbox: bool,
  'sandbox-config': str,
  'sandbox-runtime': { type: 'string', options: ['auto', 'nsjail', 'bwrap'] },
  'sandbox-logs': bool,
  'sandbox-bind': many,
  hermetic: bool,
};

export type BuildFlagValues = Record<string, string | string[] | boolean>;

export interface BuildArgv {
  args: { context: string };
  flags: BuildFlagValues;
}

/** argv after `build`; undefined when this reader is not certain to agree with oclif. */
export function readBuildArgv(argv: readonly string[]): BuildArgv | undefined {
  const byChar = new Map<string, string>();
  for (const [name, spec] of Object.entries(BUILD_FLAG_TABLE))
    if (spec.char) byChar.set(spec.char, name);
  const flags: BuildFlagValues = {};
  let context: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '-') return undefined;
    if (!token.startsWith('-')) {
      if (context !== undefined || token === '') return undefined;
      context = token;
      continue;
    }
    let name: string | undefined;
    let value: string | undefined;
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      name = token.slice(2, eq < 0 ? undefined : eq);
      if (eq >= 0) value = token.slice(eq + 1);
    } else if (token.length === 2) {
      name = byChar.get(token[1]!);
    }
    const spec = name === undefined ? undefined : BUILD_FLAG_TABLE[name];
    if (name === undefined || spec === undefined || !Object.hasOwn(BUILD_FLAG_TABLE, name))
      return undefined;
    if (spec.type === 'boolean') {
      if (value !== undefined || name in flags) return undefined;
      flags[name] = true;
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined || (value.startsWith('-') && value !== '-')) return undefined;
    }
    if (value === '' || (spec.options && !spec.options.includes(value))) return undefined;
    if (spec.multiple) {
      const list = flags[name];
      flags[name] = Array.isArray(list) ? [...list, value] : [value];
    } else {
      if (name in flags) return undefined;
      flags[name] = value;
    }
  }
  if (context === undefined) return undefined;
  for (const [name, spec] of Object.entries(BUILD_FLAG_TABLE))
    if (spec.default !== undefined && !(name in flags)) flags[name] = spec.default;
  return { args: { context }, flags };
}

/** One string per reading of a command line: equal exactly when both readings agree. */
export function commandLineKey(args: object, flags: object): string {
  const sorted = (o: object) =>
    Object.fromEntries(
      Object.entries(o)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  return JSON.stringify({ args: sorted(args), flags: sorted(flags) });
}
