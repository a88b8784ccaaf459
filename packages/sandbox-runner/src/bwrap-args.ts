/**
 * The bwrap argv for a policy (without host wrappers). Every field is first checked against
 * the support table; refusals are collected so one error names every field at once.
 */
import { readFileSync } from 'node:fs';
import type { IdMap, NsJailConfig } from '@ktl/nsjail-config';
import { mountArgs } from './bwrap-mounts';
import { seccompBytes, seccompProgram } from './bwrap-seccomp';
import { checkTopLevel, Refusals, SUPPORT } from './bwrap-support';
import { eff } from './eff';
import { SandboxError } from './errors';

export interface BwrapArgsInput {
  policy: NsJailConfig;
  file: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  allowUnenforced: ReadonlySet<string>;
  /** Descriptor numbers chosen by the caller. */
  statusFd: number;
  blockFd: number | undefined;
  firstDataFd: number;
  /** Mounts (by index in policy.mount) to make from a descriptor: the child's fd number. */
  pinnedMounts?: ReadonlyMap<number, number>;
}

export interface BwrapArgs {
  args: string[];
  /** Bytes to write to descriptors firstDataFd, firstDataFd+1, ... */
  data: Uint8Array[];
  notes: string[];
}

function lookupId(kind: 'uid' | 'gid', name: string): number | undefined {
  const file = kind === 'uid' ? '/etc/passwd' : '/etc/group';
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
    }
  } catch {
    // no passwd/group: only numeric ids work, as with nsjail's getpwnam failing
  }
  return undefined;
}

/** The id inside the jail for a uid/gid map list, refusing what bwrap cannot map. */
function mappedId(
  key: 'uidmap' | 'gidmap',
  maps: readonly IdMap[],
  current: number,
  userns: boolean,
  refusals: Refusals,
): number | undefined {
  const kind = key === 'uidmap' ? 'uid' : 'gid';
  if (maps.length === 0) return current;
  if (maps.length > 1) {
    refusals.refuse(key, `bwrap maps a single ${kind}; the policy has ${maps.length} ${key}s`);
    return current;
  }
  const m = maps[0]!;
  const parse = (side: 'inside_id' | 'outside_id') => {
    const v = m[side] ?? '';
    if (v === '') return current;
    const n = /^\d+$/.test(v) ? Number(v) : lookupId(kind, v);
    if (n === undefined) {
      throw new SandboxError(`${key}[0].${side}: no ${kind} named "${v}" on this host`, {
        code: 'E_POLICY',
      });
    }
    return n;
  };
  let ok = true;
  if (m.use_newidmap === true) {
    ok = refusals.refuse(`${key}.use_newidmap`, 'bwrap does not use newuidmap/newgidmap') && ok;
  }
  if ((m.count ?? 1) !== 1) {
    ok = refusals.refuse(`${key}.count`, `bwrap maps exactly one ${kind}, not ${m.count}`) && ok;
  }
  const outside = parse('outside_id');
  if (outside !== current) {
    ok =
      refusals.refuse(
        `${key}.outside_id`,
        `bwrap can only map the caller's own ${kind} (${current}), not ${outside}`,
      ) && ok;
  }
  const inside = parse('inside_id');
  if (!userns && inside !== current) {
    ok =
      refusals.refuse(
        key,
        `without clone_newuser bwrap cannot switch to ${kind} ${inside} (it needs a user namespace)`,
      ) && ok;
  }
  return ok ? inside : current;
}

function envArgs(p: NsJailConfig, env: NodeJS.ProcessEnv): string[] {
  const out = eff(p, 'keep_env') ? [] : ['--clearenv'];
  for (const e of p.envar ?? []) {
    const eq = e.indexOf('=');
    if (eq >= 0) out.push('--setenv', e.slice(0, eq), e.slice(eq + 1));
    else if (env[e] !== undefined) out.push('--setenv', e, env[e]!);
    // nsjail (cmdline::addEnv) skips a bare name that its own environment does not have.
  }
  return out;
}

/**
 * What to do about fields bwrap cannot enforce. nsjail is suggested only for those it would
 * help with: the runner refuses some (exec_bin, daemon) under nsjail as well.
 */
function unenforceableHint(fields: string[]): string {
  const top = (f: string) => f.split('.')[0]!;
  const everywhere = fields.filter((f) => SUPPORT[top(f)]?.refusedUnderNsjail);
  const rest = fields.filter((f) => !everywhere.includes(f));
  const them = (n: number) => (n > 1 ? 'them' : 'it');
  const allow = `pass allowUnenforced: ${JSON.stringify(fields)} to run without ${them(fields.length)}`;
  if (everywhere.length === 0) return `use runtime 'nsjail', or ${allow}`;
  const remove = `remove ${everywhere.join(', ')} from the policy (the runner refuses ${them(everywhere.length)} under nsjail too)`;
  return rest.length === 0
    ? `${remove}, or ${allow}`
    : `${remove}; for ${rest.join(', ')} use runtime 'nsjail'; or ${allow}`;
}

export function bwrapArgs(input: BwrapArgsInput): BwrapArgs {
  const { policy: p, statusFd, blockFd } = input;
  const refusals = new Refusals(input.allowUnenforced);
  const notes: string[] = [];
  const data: Uint8Array[] = [];
  checkTopLevel(p, refusals);

  const args: string[] = [];
  const userns = eff(p, 'clone_newuser');
  const uid = mappedId('uidmap', p.uidmap ?? [], process.getuid!(), userns, refusals);
  const gid = mappedId('gidmap', p.gidmap ?? [], process.getgid!(), userns, refusals);
  if (userns) args.push('--unshare-user', '--uid', String(uid), '--gid', String(gid));
  // bwrap's default pid 1 is its own reaper; nsjail runs the command itself as pid 1, so a
  // signal the command has no handler for is ignored exactly as under nsjail.
  if (eff(p, 'clone_newpid')) args.push('--unshare-pid', '--as-pid-1');
  if (eff(p, 'clone_newnet')) args.push('--unshare-net');
  if (eff(p, 'clone_newuts')) {
    args.push('--unshare-uts', '--hostname', eff(p, 'hostname'));
  }
  if (eff(p, 'clone_newipc')) args.push('--unshare-ipc');
  if (eff(p, 'clone_newcgroup')) args.push('--unshare-cgroup');
  // bwrap dies with the runner, and the command with bwrap: PR_SET_PDEATHSIG both ways.
  args.push('--die-with-parent');
  if (!eff(p, 'skip_setsid')) args.push('--new-session');
  if (!eff(p, 'keep_caps')) {
    args.push('--cap-drop', 'ALL');
    for (const c of p.cap ?? []) args.push('--cap-add', c);
  }
  args.push(...envArgs(p, input.env));
  args.push(
    ...mountArgs(p, {
      env: input.env,
      refusals,
      addData(content) {
        data.push(content);
        return input.firstDataFd + data.length - 1;
      },
      note: (l) => notes.push(l),
      pinnedFd: (i) => input.pinnedMounts?.get(i),
    }),
  );
  const filter = seccompProgram(p, refusals);
  if (filter) {
    data.push(seccompBytes(filter));
    args.push('--seccomp', String(input.firstDataFd + data.length - 1));
  }
  args.push('--chdir', eff(p, 'cwd'));
  args.push('--json-status-fd', String(statusFd));
  if (blockFd !== undefined) args.push('--block-fd', String(blockFd));
  args.push('--', input.file, ...input.args);

  if (refusals.refused.length > 0) {
    const fields = [...new Set(refusals.refused.map((r) => r.field.replace(/\[\d+\]/g, '')))];
    throw new SandboxError(
      `bwrap cannot enforce ${refusals.refused.map((r) => r.field).join(', ')}: ${refusals.refused
        .map((r) => `${r.field}: ${r.why}`)
        .join('; ')}`,
      { code: 'E_UNENFORCEABLE', hint: unenforceableHint(fields) },
    );
  }
  for (const a of refusals.allowed)
    notes.push(`not enforced by bwrap (allowUnenforced): ${a.field}: ${a.why}`);
  return { args, data, notes };
}
