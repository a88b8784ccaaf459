/**
 * A flag that takes one value, given more than once, means its last value, as with docker's
 * flags (Go's pflag): `ktl build -f a.Dockerfile -f b.Dockerfile .` builds b.Dockerfile. oclif
 * refuses the repetition ("can only be specified once"), so the earlier occurrences are taken
 * out of the command line before it parses it. Repeatable flags are left as they are.
 */

/** What the rewrite needs to know of a flag (oclif's flag definitions have these fields). */
export interface FlagShape {
  readonly type: 'boolean' | 'option';
  readonly char?: string | undefined;
  readonly multiple?: boolean | undefined;
  readonly allowNo?: boolean | undefined;
}

/** `argv` without the earlier occurrences of each single-value flag in `flags`. */
export function lastFlagWins(
  argv: readonly string[],
  flags: Readonly<Record<string, FlagShape>>,
): string[] {
  const byToken = new Map<string, { name: string; shape: FlagShape }>();
  for (const [name, shape] of Object.entries(flags)) {
    if (shape.multiple) continue;
    byToken.set(`--${name}`, { name, shape });
    if (shape.type === 'boolean' && shape.allowNo) byToken.set(`--no-${name}`, { name, shape });
    if (shape.char) byToken.set(`-${shape.char}`, { name, shape });
  }
  /** Each occurrence of a single-value flag: where it starts and how many tokens it takes. */
  const seen = new Map<string, Array<[number, number]>>();
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    if (!t.startsWith('-') || t === '-') continue;
    const eq = t.indexOf('=');
    const head = t.startsWith('--') && eq > 0 ? t.slice(0, eq) : t;
    let flag = byToken.get(head);
    let inline = head !== t;
    if (!flag && !t.startsWith('--') && t.length > 2) {
      // -fFILE: a one-letter option flag with its value attached.
      flag = byToken.get(t.slice(0, 2));
      if (flag?.shape.type !== 'option') flag = undefined;
      inline = true;
    }
    if (!flag) continue;
    const n = flag.shape.type === 'option' && !inline ? 2 : 1;
    seen.set(flag.name, [...(seen.get(flag.name) ?? []), [i, n]]);
    i += n - 1;
  }
  const drop = new Set<number>();
  for (const occurrences of seen.values())
    for (const [start, n] of occurrences.slice(0, -1))
      for (let k = 0; k < n; k++) drop.add(start + k);
  return argv.filter((_, i) => !drop.has(i));
}
