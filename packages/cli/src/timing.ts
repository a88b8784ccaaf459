/**
 * KTL_TIMING=1: one `[timing] +N ms label` line per phase on stderr, measured from process
 * start. For finding where start-up time goes (bench/sandbox-overhead.mjs); silent otherwise.
 */
const on = process.env.KTL_TIMING === '1';
const t0 = performance.timeOrigin;

export function mark(label: string): void {
  if (on) process.stderr.write(`[timing] +${Math.round(Date.now() - t0)} ms ${label}\n`);
}
