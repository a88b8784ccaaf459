/**
 * Node built-in modules that only some paths use, loaded when first used. Each costs a few ms
 * to load (crypto ~5, tls ~2.5, child_process ~2 on this kind of machine), and the jailed half
 * of a sandboxed `ktl build`, whose start-up every sandboxed build waits for, needs none of
 * them unless the build exports files (crypto), talks TLS (tls) or runs a credential helper
 * (child_process).
 */

import type * as ChildProcess from 'node:child_process';
import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';

const load = createRequire(import.meta.url);
let crypto: typeof Crypto | undefined;
let tls: typeof Tls | undefined;
let childProcess: typeof ChildProcess | undefined;

export const nodeCrypto = (): typeof Crypto => {
  crypto ??= load('node:crypto') as typeof Crypto;
  return crypto;
};
export const nodeTls = (): typeof Tls => {
  tls ??= load('node:tls') as typeof Tls;
  return tls;
};
export const nodeChildProcess = (): typeof ChildProcess => {
  childProcess ??= load('node:child_process') as typeof ChildProcess;
  return childProcess;
};
