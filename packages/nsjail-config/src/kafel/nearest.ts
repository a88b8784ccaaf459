/** Edit-distance "did you mean" candidates, kept local so the kafel front end stands alone. */

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Up to `max` candidates close to `name`, best first. Case is ignored when measuring (people
 * write `Read` or `allow`), and a candidate containing the name (or the reverse) counts as
 * close, so `fstat` finds `newfstat`.
 */
export function nearest(name: string, candidates: Iterable<string>, max = 3): string[] {
  if (name.length > 64) return [];
  const lower = name.toLowerCase();
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 3)));
  const scored: [string, number][] = [];
  for (const c of new Set(candidates)) {
    const cl = c.toLowerCase();
    let d = cl === lower ? 0 : distance(lower, cl);
    if (d > 1 && lower.length >= 4 && (cl.includes(lower) || lower.includes(cl))) d = 1;
    if (d <= limit) scored.push([c, d]);
  }
  scored.sort((x, y) => x[1] - y[1] || x[0].length - y[0].length || (x[0] < y[0] ? -1 : 1));
  return scored.slice(0, max).map(([c]) => c);
}

export function quoteList(names: readonly string[], joiner = 'or'): string {
  const q = names.map((n) => `\`${n}\``);
  if (q.length <= 1) return q.join('');
  return `${q.slice(0, -1).join(', ')} ${joiner} ${q[q.length - 1]}`;
}
