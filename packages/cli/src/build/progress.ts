/** A plain progress printer in buildx's style: `#N name`, logs, `#N DONE 0.3s`, `#N CACHED`. */
import type { StatusResponse } from '@ktl/buildkit-client';

export function plainProgress(write: (s: string) => void): {
  onStatus: (s: StatusResponse) => void;
  failed: () => string[];
} {
  const ids = new Map<string, number>();
  const done = new Set<string>();
  const started = new Set<string>();
  const logs = new Map<string, string[]>();
  const errors: string[] = [];
  const id = (digest: string) => {
    let n = ids.get(digest);
    if (n === undefined) {
      n = ids.size + 1;
      ids.set(digest, n);
    }
    return n;
  };
  return {
    onStatus(s) {
      for (const v of s.vertexes) {
        const n = id(v.digest);
        if (!started.has(v.digest) && (v.started || v.cached)) {
          started.add(v.digest);
          write(`#${n} ${v.name}\n`);
        }
        if (done.has(v.digest)) continue;
        if (v.cached) {
          done.add(v.digest);
          write(`#${n} CACHED\n`);
        } else if (v.error) {
          done.add(v.digest);
          write(`#${n} ERROR: ${v.error}\n`);
          errors.push(
            `#${n} ${v.name}: ${v.error}${(logs.get(v.digest) ?? [])
              .slice(-10)
              .map((l) => `\n    ${l}`)
              .join('')}`,
          );
        } else if (v.completed && v.started) {
          done.add(v.digest);
          write(
            `#${n} DONE ${((v.completed.getTime() - v.started.getTime()) / 1000).toFixed(1)}s\n`,
          );
        }
      }
      for (const l of s.logs) {
        const text = Buffer.from(l.msg).toString('utf8').replace(/\n$/, '');
        const kept = logs.get(l.vertex) ?? [];
        kept.push(...text.split('\n'));
        logs.set(l.vertex, kept);
        for (const line of text.split('\n')) write(`#${id(l.vertex)} ${line}\n`);
      }
    },
    failed: () => errors,
  };
}
