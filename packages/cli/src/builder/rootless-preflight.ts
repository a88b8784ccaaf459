/**
 * Whether this host can run Docker's rootless mode, checked before anything starts so that a
 * missing piece is named with its fix rather than found in a daemon log. What it needs:
 * dockerd-rootless.sh, rootlesskit and slirp4netns (its network: a user-mode TCP/IP stack, so
 * the engine has no interface on the host and, with host loopback disabled, no way to the
 * host's 127.0.0.1), the setuid newuidmap/newgidmap (uidmap) with a subordinate id range for
 * the user, user namespaces, and a /dev/net/tun the user can open (slirp4netns's tap device;
 * some VMs ship it 0600).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, type Stats, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { asUser, type EngineUser, freeSubidStart, SUBID_COUNT, subidRange } from './rootless-user';

type Env = Readonly<Record<string, string | undefined>>;

/** Where Debian's docker.io puts the script; docker-ce installs it on PATH. */
export const DEBIAN_ROOTLESS_SCRIPT = '/usr/share/docker.io/contrib/dockerd-rootless.sh';

export interface Problem {
  /** What is missing, in a line. */
  readonly what: string;
  /** How to fix it. */
  readonly fix: string;
}

export interface RootlessTools {
  readonly script: string;
  readonly rootlesskit: string;
  readonly slirp4netns: string;
}

export function onPath(name: string, env: Env): string | undefined {
  for (const d of (env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function sysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** setuid root, or (as getcap tells) the file capability it needs. */
function canMapIds(path: string, cap: 'cap_setuid' | 'cap_setgid'): boolean {
  const st = statSync(path);
  if (st.uid === 0 && (st.mode & 0o4000) !== 0) return true;
  const r = spawnSync('getcap', [path], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes(cap);
}

/** The host-wide pieces: binaries and kernel settings, whoever runs the engine. */
export function checkHost(env: Env): { tools: RootlessTools | undefined; problems: Problem[] } {
  const problems: Problem[] = [];
  const script =
    onPath('dockerd-rootless.sh', env) ??
    (existsSync(DEBIAN_ROOTLESS_SCRIPT) ? DEBIAN_ROOTLESS_SCRIPT : undefined);
  if (!script)
    problems.push({
      what: `dockerd-rootless.sh is neither on PATH nor at ${DEBIAN_ROOTLESS_SCRIPT}`,
      fix: 'install Docker with its rootless script: Debian/Ubuntu `apt-get install docker.io` (ships it in /usr/share/docker.io/contrib), Docker CE `docker-ce-rootless-extras`',
    });
  const rootlesskit = onPath('rootlesskit', env) ?? onPath('docker-rootlesskit', env);
  if (!rootlesskit)
    problems.push({ what: 'rootlesskit is not on PATH', fix: 'apt-get install rootlesskit' });
  const slirp4netns = onPath('slirp4netns', env);
  if (!slirp4netns)
    problems.push({ what: 'slirp4netns is not on PATH', fix: 'apt-get install slirp4netns' });
  else {
    const help = spawnSync(slirp4netns, ['--help'], { encoding: 'utf8' });
    if (!`${help.stdout}${help.stderr}`.includes('--netns-type'))
      problems.push({
        what: `${slirp4netns} is older than 0.4 (no --netns-type)`,
        fix: 'install slirp4netns 0.4 or newer (apt-get install slirp4netns)',
      });
  }
  for (const [tool, cap] of [
    ['newuidmap', 'cap_setuid'],
    ['newgidmap', 'cap_setgid'],
  ] as const) {
    const p = onPath(tool, env);
    if (!p) problems.push({ what: `${tool} is not on PATH`, fix: 'apt-get install uidmap' });
    else if (!canMapIds(p, cap))
      problems.push({
        what: `${p} is neither setuid root nor given ${cap}: it cannot map the user's subordinate ids`,
        fix: `reinstall it (apt-get install --reinstall uidmap), or chmod u+s ${p}`,
      });
  }
  if (sysctl('/proc/sys/user/max_user_namespaces') === '0')
    problems.push({
      what: 'user namespaces are disabled (user.max_user_namespaces = 0)',
      fix: 'sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)',
    });
  if (sysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0')
    problems.push({
      what: 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)',
      fix: 'sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/ to keep it)',
    });
  if (sysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1')
    problems.push({
      what: 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)',
      fix: "give rootlesskit an AppArmor profile that allows userns (Docker's rootless docs have one), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
    });
  return {
    tools: script && rootlesskit && slirp4netns ? { script, rootlesskit, slirp4netns } : undefined,
    problems,
  };
}

/** What `user` itself needs: subordinate ids, a user namespace, /dev/net/tun. */
export function checkUser(user: EngineUser): Problem[] {
  const problems: Problem[] = [];
  const free = freeSubidStart();
  const suggest = `${free}-${free + SUBID_COUNT - 1}`;
  for (const [file, flag] of [
    ['/etc/subuid', '--add-subuids'],
    ['/etc/subgid', '--add-subgids'],
  ] as const) {
    const r = subidRange(file, user);
    if (!r)
      problems.push({
        what: `${user.name} has no subordinate id range in ${file}`,
        fix: `sudo usermod ${flag} ${suggest} ${user.name}`,
      });
    else if (r.count < SUBID_COUNT)
      problems.push({
        what: `${user.name}'s range in ${file} has ${r.count} ids; images need ${SUBID_COUNT}`,
        fix: `sudo usermod ${flag} ${suggest} ${user.name}`,
      });
  }
  const userns = asUser(user, 'unshare', ['--user', '--map-root-user', 'true']);
  if (!userns.error && userns.status !== 0)
    problems.push({
      what: `${user.name} cannot create a user namespace (unshare --user: ${String(userns.stderr).trim() || `exit ${userns.status}`})`,
      fix: 'allow unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone, AppArmor)',
    });
  let tun: Stats | undefined;
  try {
    tun = statSync('/dev/net/tun');
  } catch {}
  if (!tun?.isCharacterDevice())
    problems.push({
      what: '/dev/net/tun does not exist (slirp4netns needs a tap device)',
      fix: 'modprobe tun (or: mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 666 /dev/net/tun)',
    });
  else if (asUser(user, 'sh', ['-c', 'exec 3<>/dev/net/tun']).status !== 0)
    problems.push({
      what: `/dev/net/tun (mode ${(tun.mode & 0o777).toString(8).padStart(4, '0')}) cannot be opened by ${user.name}: slirp4netns cannot set up its tap device`,
      fix: 'chmod 666 /dev/net/tun (its usual mode; to keep it across reboots, a udev rule: KERNEL=="tun", MODE="0666")',
    });
  if (!existsSync(user.home))
    problems.push({
      what: `${user.name}'s home ${user.home} does not exist (dockerd-rootless.sh needs one)`,
      fix: `create it, owned by ${user.name}, or set HOME`,
    });
  return problems;
}

/** The problems as one message and one hint, every problem and every fix named. */
export function describeProblems(problems: readonly Problem[]): { message: string; hint: string } {
  return {
    message: `the rootless engine cannot run on this host:\n${problems.map((p) => `  - ${p.what}`).join('\n')}`,
    hint: `${problems.map((p) => p.fix).join('\nhint: ')}\nhint: a rootful engine starts with \`ktl builder start --rootful\`; its RUN steps granted network.host reach the host's loopback and security.insecure makes them root on the host`,
  };
}
