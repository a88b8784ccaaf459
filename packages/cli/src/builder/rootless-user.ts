/**
 * Who runs the rootless engine. Rootless means the daemon and every RUN step hold no more
 * than an unprivileged user's rights on the host: the caller when ktl runs as a user; when it
 * runs as root, a dedicated system user (`ktl-builder`) that ktl creates, with a range of
 * subordinate uids and gids for the engine's user namespace, when it does not exist yet.
 */
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { BuilderError, BuilderExit } from './errors';

/** The system user a root ktl runs the rootless engine as. */
export const BUILDER_USER = 'ktl-builder';
/** Its home, where its engines keep their data when ktl runs as root. */
export const BUILDER_HOME = '/var/lib/ktl-builder';
/** Subordinate ids a user needs for an engine's user namespace (what Docker asks for). */
export const SUBID_COUNT = 65536;
const SUBID_MIN = 100000;

export interface EngineUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** ktl's own system user (ktl runs as root), not the caller. */
  readonly dedicated: boolean;
}

export interface SubidRange {
  readonly start: number;
  readonly count: number;
}

function passwdEntry(
  key: string,
): { name: string; uid: number; gid: number; home: string } | undefined {
  const r = spawnSync('getent', ['passwd', key], { encoding: 'utf8' });
  const f = r.status === 0 ? r.stdout.trim().split('\n')[0]?.split(':') : undefined;
  if (!f || f.length < 7) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

/** The ranges of /etc/subuid or /etc/subgid, per user name or uid as written there. */
function subidEntries(file: string): { owner: string; start: number; count: number }[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: { owner: string; start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    if (f.length !== 3 || line.trim().startsWith('#')) continue;
    const start = Number(f[1]);
    const count = Number(f[2]);
    if (Number.isInteger(start) && Number.isInteger(count))
      out.push({ owner: f[0]!, start, count });
  }
  return out;
}

/** The user's largest subordinate range in `file` (`/etc/subuid`, `/etc/subgid`). */
export function subidRange(
  file: string,
  user: Pick<EngineUser, 'name' | 'uid'>,
): SubidRange | undefined {
  const mine = subidEntries(file).filter(
    (e) => e.owner === user.name || e.owner === String(user.uid),
  );
  return mine.sort((a, b) => b.count - a.count)[0];
}

/** A range of SUBID_COUNT ids after every range either file hands out (as useradd picks). */
export function freeSubidStart(): number {
  let start = SUBID_MIN;
  for (const e of [...subidEntries('/etc/subuid'), ...subidEntries('/etc/subgid')])
    start = Math.max(start, e.start + e.count);
  return start;
}

/** The caller, when ktl does not run as root. */
export function callerUser(env: Readonly<Record<string, string | undefined>>): EngineUser {
  const uid = process.getuid!();
  const pw = passwdEntry(String(uid));
  const info = userInfo();
  return {
    name: pw?.name ?? info.username,
    uid,
    gid: process.getgid!(),
    home: env.HOME || pw?.home || info.homedir,
    dedicated: false,
  };
}

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new BuilderError(
      `cannot ${what} (${cmd} ${args.join(' ')}): ${r.error?.message ?? r.stderr.trim()}`,
      BuilderExit.START_FAILED,
      `create the user yourself (useradd --system --user-group --home-dir ${BUILDER_HOME} --create-home ${BUILDER_USER}; usermod --add-subuids A-B --add-subgids A-B ${BUILDER_USER}) and run ktl builder start again`,
    );
  }
}

/**
 * ktl's system user, created when absent (a system account with its own group, no login
 * shell, home BUILDER_HOME), and given a subordinate uid and gid range when it has none.
 */
export function ensureBuilderUser(log: (line: string) => void): EngineUser {
  let pw = passwdEntry(BUILDER_USER);
  if (!pw) {
    const shell = existsSync('/usr/sbin/nologin') ? '/usr/sbin/nologin' : '/bin/false';
    log(
      `creating the system user ${BUILDER_USER} (home ${BUILDER_HOME}) to run the rootless engine`,
    );
    run(
      'useradd',
      [
        '--system',
        '--user-group',
        '--home-dir',
        BUILDER_HOME,
        '--create-home',
        '--shell',
        shell,
        '--comment',
        'ktl rootless builder',
        BUILDER_USER,
      ],
      `create the user ${BUILDER_USER}`,
    );
    pw = passwdEntry(BUILDER_USER);
    if (!pw) run('false', [], `find the user ${BUILDER_USER} after creating it`);
  }
  const user: EngineUser = { ...pw!, dedicated: true };
  if (!subidRange('/etc/subuid', user) || !subidRange('/etc/subgid', user)) {
    const start = freeSubidStart();
    const range = `${start}-${start + SUBID_COUNT - 1}`;
    log(`giving ${BUILDER_USER} the subordinate uids and gids ${range}`);
    const args = [];
    if (!subidRange('/etc/subuid', user)) args.push('--add-subuids', range);
    if (!subidRange('/etc/subgid', user)) args.push('--add-subgids', range);
    run('usermod', [...args, BUILDER_USER], `give ${BUILDER_USER} subordinate ids`);
  }
  return user;
}

/** Runs a command as `user` (dropping root's rights when ktl is root). */
export function asUser(
  user: EngineUser,
  cmd: string,
  args: readonly string[],
  opts: SpawnSyncOptions = {},
): ReturnType<typeof spawnSync> {
  const drop = process.getuid?.() === 0 && user.uid !== 0 ? { uid: user.uid, gid: user.gid } : {};
  return spawnSync(cmd, args, { encoding: 'utf8', cwd: '/', ...opts, ...drop });
}
