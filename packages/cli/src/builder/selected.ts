/**
 * The builder `ktl build` would use, with its risk, for `ktl sandbox doctor`: discovery as the
 * build does it (BUILDKIT_HOST, DOCKER_HOST, the managed builder, the default sockets), or
 * the address given.
 */
import { connect } from '@ktl/buildkit-client';
import { managedCandidates, START_HINT } from './managed';
import { type BuilderRisk, builderRisk, describeRisk, rootfulExposure } from './risk';

export type SelectedBuilder =
  | ({ readonly found: true; readonly address: string } & BuilderRisk)
  | { readonly found: false; readonly reason: string; readonly hint: string };

export async function selectedBuilder(
  address?: string,
  timeoutMs = 3000,
): Promise<SelectedBuilder> {
  let conn: Awaited<ReturnType<typeof connect>>;
  try {
    conn = await connect(address, { preferred: managedCandidates(process.env), timeoutMs });
  } catch (e) {
    const err = e as Error & { hint?: string };
    return {
      found: false,
      reason: err.message.split('\n')[0] ?? String(e),
      hint: address === undefined ? START_HINT : (err.hint ?? 'check the address'),
    };
  }
  try {
    return {
      found: true,
      address: conn.address,
      ...(await builderRisk(conn, undefined, timeoutMs)),
    };
  } finally {
    await conn.close();
  }
}

/** Doctor's lines: `ok  ` for a rootless builder, `WARN` for a rootful one, `--  ` for none. */
export function formatSelectedBuilder(b: SelectedBuilder): string[] {
  if (!b.found) return [`--   builder: ${b.reason}`, `     hint: ${b.hint}`];
  const lines = [
    `${b.rootless ? 'ok  ' : 'WARN'} builder: ${b.address}: ${describeRisk(b)} (${b.rootlessBasis})`,
  ];
  if (!b.rootless) {
    const exposed = rootfulExposure(b.entitlements);
    lines.push(
      `     the sandbox confines the build client, not this builder${exposed ? `: ${exposed}` : ''}; \`ktl builder start\` starts a rootless one`,
    );
  }
  return lines;
}
