/**
 * KTL_TIMING=1: one `[timing] +N ms label` line per phase on stderr, measured from process
 * start. For finding where start-up time goes (bench/sandbox-overhead.mjs); silent otherwise.
 */
const on = process.env.KTL_TIMING === '1' || process.env.KTL_TIMING === 'abs';
// KTL_TIMING=abs adds the wall clock (ms within the minute), to line up the outer and the
// jailed process, whose clocks start at different times.
const abs = process.env.KTL_TIMING === 'abs';
const t0 = performance.timeOrigin;

export function mark(label: string): void {
  if (!on) return;
  const now = Date.now();
  const wall = abs ? ` @${now % 60000}` : '';
  process.stderr.write(`[timing] +${Math.round(now - t0)} ms${wall} ${label}\n`);
}
