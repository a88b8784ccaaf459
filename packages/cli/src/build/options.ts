/** `ktl build` flags -> solve options; every bad value names the flag. */
import { resolve } from 'node:path';
import type { ExportSpec } from '@ktl/buildkit-client';

export class BuildUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildUsageError';
  }
}

export function keyValues(
  flag: string,
  values: readonly string[] | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const i = v.indexOf('=');
    if (i <= 0) throw new BuildUsageError(`${flag} ${v}: expected KEY=VALUE`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

/** `-o` in buildx's syntax: `type=local,dest=DIR`, `type=tar,dest=FILE`, a bare DIR means local. */
export function parseOutput(spec: string, cwd: string): ExportSpec {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) {
      if (spec.includes('=')) throw new BuildUsageError(`-o ${spec}: "${part}" is not KEY=VALUE`);
      return { type: 'local', dest: resolve(cwd, part) };
    }
    fields.set(part.slice(0, i), part.slice(i + 1));
  }
  const type = fields.get('type') ?? 'local';
  const dest = fields.get('dest');
  const attrs = Object.fromEntries([...fields].filter(([k]) => k !== 'type' && k !== 'dest'));
  switch (type) {
    case 'local':
    case 'tar':
    case 'oci':
    case 'docker':
      if (!dest) throw new BuildUsageError(`-o ${spec}: type=${type} needs dest=PATH`);
      if (dest === '-')
        throw new BuildUsageError(
          `-o ${spec}: writing to stdout is not supported yet; give a file`,
        );
      return { type, dest: resolve(cwd, dest), attrs };
    case 'image':
      return { type: 'image', attrs };
    default:
      throw new BuildUsageError(
        `-o ${spec}: unknown type "${type}" (local, tar, oci, docker, image)`,
      );
  }
}

/** `docker.io/library/` for short names, so the engine can find the image afterwards. */
export function normalizeImageName(name: string): string {
  const [first, ...rest] = name.split('/');
  const hasRegistry =
    rest.length > 0 && (first!.includes('.') || first!.includes(':') || first === 'localhost');
  const withTag = /:[^/]+$/.test(name) || name.includes('@') ? name : `${name}:latest`;
  if (hasRegistry) return withTag;
  return rest.length === 0 ? `docker.io/library/${withTag}` : `docker.io/${withTag}`;
}
