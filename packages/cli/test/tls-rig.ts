/**
 * The rig's TLS engine (scripts/rig-tls.sh): its env file, whether it answers over TLS, and a
 * way to run ktl that does not block the test process (tests that serve TLS of their own must
 * keep answering while ktl runs).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { join } from 'node:path';
import { type KtlResult, ktlBin, readEnvFile, repoRoot } from './helpers';

export const TLS_ENV = process.env.KTL_RIG_TLS_ENV_FILE ?? '/var/lib/ktl-rig/env-tls';
export const tlsRig = readEnvFile(TLS_ENV);
const host = tlsRig.KTL_RIG_TLS_HOST ?? '';
const certs = tlsRig.KTL_RIG_TLS_CERT_DIR ?? '';
const base = readEnvFile().KTL_RIG_BASE_IMAGE;

/** Why the TLS engine cannot be used here ('' when it answers over TLS). */
async function probe(): Promise<string> {
  if (!host || !certs) return `the TLS engine is not up (no ${TLS_ENV}); run scripts/rig-tls.sh up`;
  if (!base) return 'the rig names no base image; run scripts/rig.sh up';
  const [, h, p] = /^tcp:\/\/([^:]+):(\d+)$/.exec(host) ?? [];
  return new Promise((resolve) => {
    const req = https.get(
      {
        host: h,
        port: Number(p),
        path: '/_ping',
        ca: readFileSync(join(certs, 'ca.pem')),
        cert: readFileSync(join(certs, 'cert.pem')),
        key: readFileSync(join(certs, 'key.pem')),
        timeout: 3000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? '' : `the TLS engine ${host} answers ${res.statusCode}`);
      },
    );
    req.on('error', (e) => resolve(`the TLS engine ${host} does not answer: ${e.message}`));
    req.on('timeout', () => req.destroy(new Error('timed out')));
  });
}

/** Why the TLS engine cannot be used here, or '' when it answers over TLS. */
export function tlsRigDown(): Promise<string> {
  return probe().catch((e: Error) => e.message);
}

/** `ktl ARGS` as a user runs it, without blocking this process. */
export function runKtl(args: string[], env: Record<string, string>): Promise<KtlResult> {
  return new Promise((resolve) => {
    const child = spawn(ktlBin, args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
