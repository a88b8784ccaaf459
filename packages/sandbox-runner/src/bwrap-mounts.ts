/**
 * nsjail's mount list as bwrap flags. nsjail builds the jail root as an empty 16 MiB tmpfs,
 * makes the mounts in order (symlink, then src_content, then bind or fstype, mnt_legacy.cc),
 * adds /proc when mount_proc is set, then remounts read-only whatever was not rw and finally
 * the root itself. bwrap's flags run in order too, so the same sequence is reproduced; the
 * read-only remounts of tmpfs/proc/mqueue/device binds are deferred to the end as in nsjail,
 * so a later mount can still create its mount point inside an earlier one.
 */
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import { type MountPt, type NsJailConfig, policyDescriptor } from '@ktl/nsjail-config';
import type { Refusals } from './bwrap-support';
import { SandboxError } from './errors';

const MOUNT_DESC = policyDescriptor.byName.get('mount')!.message!;
/** nsjail's root tmpfs size (mnt_legacy.cc). */
const ROOT_TMPFS_SIZE = 16 * 1024 * 1024;

export interface MountContext {
  readonly env: NodeJS.ProcessEnv;
  readonly refusals: Refusals;
  /** Registers bytes to be fed to bwrap on a descriptor; returns the descriptor number. */
  addData(content: Uint8Array): number;
  /** Runner notes for the runtime log. */
  note(line: string): void;
  /** The descriptor (in bwrap) a bind mount is made from, when the caller pinned its source. */
  pinnedFd?(mountIndex: number): number | undefined;
}

const SIZE_UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** tmpfs `size=`/`mode=` as bwrap --size/--perms; other options cannot be passed to bwrap. */
function tmpfsOptions(i: number, options: string, ctx: MountContext): string[] {
  const out: string[] = [];
  for (const opt of options.split(',').filter((o) => o !== '')) {
    const [k, v = ''] = opt.split('=');
    const size = /^(\d+)([kmg]?)$/i.exec(v);
    if (k === 'size' && size) {
      const bytes = Number(size[1]) * (SIZE_UNITS[size[2]!.toLowerCase()] ?? 1);
      out.push('--size', String(bytes));
    } else if (k === 'mode' && /^[0-7]{1,4}$/.test(v)) {
      out.push('--perms', v.padStart(4, '0'));
    } else {
      ctx.refusals.refuse(
        `mount[${i}].options`,
        `tmpfs option "${opt}" has no bwrap equivalent (only size=BYTES[kmg] and mode=OCTAL)`,
      );
    }
  }
  return out;
}

function resolvePrefix(
  i: number,
  m: MountPt,
  key: 'prefix_src_env' | 'prefix_dst_env',
  ctx: MountContext,
): string | undefined {
  const name = m[key];
  if (!name) return '';
  const v = ctx.env[name];
  if (v !== undefined) return v;
  if (m.mandatory !== false) {
    throw new SandboxError(
      `mount[${i}].${key}: environment variable ${name} is not set (the mount is mandatory)`,
      { code: 'E_POLICY', hint: `set ${name}, or mark the mount mandatory: false` },
    );
  }
  ctx.note(`mount[${i}] skipped: ${key} ${name} is not set and the mount is not mandatory`);
  return undefined;
}

/** Device nodes (and directories of them under /dev) need a bind without MS_NODEV. */
function needsDevices(src: string): boolean {
  try {
    const st = statSync(src);
    if (st.isCharacterDevice() || st.isBlockDevice()) return true;
    return st.isDirectory() && (src === '/dev' || src.startsWith('/dev/'));
  } catch {
    return false;
  }
}

export function mountArgs(p: NsJailConfig, ctx: MountContext): string[] {
  const args = ['--size', String(ROOT_TMPFS_SIZE), '--tmpfs', '/'];
  const remountRo: string[] = [];
  (p.mount ?? []).forEach((m, i) => {
    const get = <K extends keyof MountPt>(k: K) =>
      (m[k] ??
        MOUNT_DESC.byName.get(k)?.default ??
        (k === 'src_content' ? new Uint8Array() : undefined)) as NonNullable<MountPt[K]>;
    const srcPrefix = resolvePrefix(i, m, 'prefix_src_env', ctx);
    const dstPrefix = resolvePrefix(i, m, 'prefix_dst_env', ctx);
    if (srcPrefix === undefined || dstPrefix === undefined) return;
    const src = srcPrefix + get('src');
    // nsjail joins newroot + "/" + dst, so a relative dst is relative to the jail root.
    const dst = posix.normalize(`/${dstPrefix}${get('dst')}`);
    const rw = get('rw');
    const content = get('src_content') as Uint8Array;
    const fstype = get('fstype');
    if (get('noexec') && fstype !== 'proc' && !get('is_symlink')) {
      ctx.refusals.refuse(
        `mount[${i}].noexec`,
        `bwrap cannot mount ${dst} noexec (only its proc mounts are noexec)`,
      );
    }
    if (get('is_symlink')) {
      args.push('--symlink', src, dst);
      return;
    }
    if (content.length > 0) {
      // nsjail writes the bytes to a fresh 0644 file and binds it (read-only unless rw).
      const fd = ctx.addData(content);
      args.push('--perms', '0644', rw ? '--bind-data' : '--ro-bind-data', String(fd), dst);
      return;
    }
    const mandatory = get('mandatory');
    if (get('is_bind')) {
      if (!src) {
        throw new SandboxError(`mount[${i}] is a bind mount without src`, { code: 'E_POLICY' });
      }
      const fd = ctx.pinnedFd?.(i);
      if (fd !== undefined) {
        // bwrap mounts what the descriptor is and checks the mount against it.
        args.push(rw ? '--bind-fd' : '--ro-bind-fd', String(fd), dst);
        return;
      }
      const tryIt = mandatory ? '' : '-try';
      if (!get('nodev') && needsDevices(src)) {
        args.push(`--dev-bind${tryIt}`, src, dst);
        if (!rw) remountRo.push(dst);
      } else args.push(rw ? `--bind${tryIt}` : `--ro-bind${tryIt}`, src, dst);
      return;
    }
    if (get('options') !== '' && fstype !== 'tmpfs') {
      ctx.refusals.refuse(
        `mount[${i}].options`,
        `mount options "${get('options')}" for ${fstype || 'a mount'} cannot be passed to bwrap`,
      );
    }
    switch (fstype) {
      case 'tmpfs':
        args.push(...tmpfsOptions(i, get('options'), ctx), '--tmpfs', dst);
        break;
      case 'proc':
        args.push('--proc', dst);
        break;
      case 'mqueue':
        args.push('--mqueue', dst);
        break;
      default:
        if (
          !ctx.refusals.refuse(
            `mount[${i}].fstype`,
            fstype === ''
              ? `mount of ${src || '(no src)'} on ${dst} is neither a bind nor a known filesystem`
              : `bwrap cannot mount a "${fstype}" filesystem (only tmpfs, proc and mqueue)`,
          )
        ) {
          return;
        }
        ctx.note(`mount[${i}] (${fstype} on ${dst}) skipped: allowed unenforced`);
        return;
    }
    if (!rw) remountRo.push(dst);
  });
  if (p.mount_proc === true) {
    args.push('--proc', '/proc');
    remountRo.push('/proc');
  }
  for (const dst of remountRo) args.push('--remount-ro', dst);
  // nsjail never leaves the root writable from a config file (only its --rw flag does).
  args.push('--remount-ro', '/');
  return args;
}
