/**
 * Pushing an image the engine already stores, through the Docker engine API
 * (`POST /images/{name}/push`). A Docker engine on a graphdriver store (every Docker before
 * the containerd image store, e.g. Debian bookworm's 20.10) builds images with its `moby`
 * exporter, which stores them and ignores `push=true` without a word: the image must then be
 * pushed by the engine afterwards, the way buildx's docker driver does it. Progress is
 * reported as one more build step (`pushing NAME with docker`) with a status per layer, so the
 * build's own renderer shows it.
 */
import * as http from 'node:http';
import type { RegistryCredentials } from '../auth/docker-config';
import { BuildkitError } from '../errors';
import type { StatusResponse, VertexStatus } from '../gen/moby/buildkit/v1/control';
import { type ImageNameError, parseImageName } from '../image-name';
import { nodeCrypto } from '../lazy-node';
import { parseAddress } from './address';
import { dialRaw, type TlsOptions } from './upgrade';

export interface EnginePushOptions {
  /** For the image's registry; anonymous when undefined. */
  readonly credentials?: RegistryCredentials | undefined;
  /** Progress, as Status messages of a step of its own. */
  readonly onStatus?: ((s: StatusResponse) => void) | undefined;
  /** Aborting closes the connection, which makes the engine stop the push. */
  readonly signal?: AbortSignal | undefined;
  readonly tls?: TlsOptions | undefined;
}

export interface EnginePushResult {
  /** The manifest digest the registry now holds under the tag. */
  readonly digest: string | undefined;
}

/** One line of the engine's JSON message stream. */
interface JsonMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Tag?: string; Digest?: string; Size?: number };
}

/**
 * X-Registry-Auth: the engine decodes URL-safe base64 *with* padding, and silently pushes
 * anonymously when the header does not decode, so Node's unpadded `base64url` will not do.
 */
export function registryAuthHeader(
  serverAddress: string,
  c: RegistryCredentials | undefined,
): string {
  const json =
    c === undefined
      ? {}
      : c.username === ''
        ? { identitytoken: c.secret, serveraddress: serverAddress }
        : { username: c.username, password: c.secret, serveraddress: serverAddress };
  return Buffer.from(JSON.stringify(json))
    .toString('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
}

export async function pushThroughEngine(
  address: string,
  name: string,
  opts: EnginePushOptions = {},
): Promise<EnginePushResult> {
  const addr = parseAddress(address);
  if (addr.kind !== 'docker') {
    throw new BuildkitError(`${address} is not a Docker engine: it has no image push API`, {
      code: 'E_UNSUPPORTED',
    });
  }
  let ref: ReturnType<typeof parseImageName>;
  try {
    ref = parseImageName(name);
  } catch (e) {
    throw new BuildkitError((e as ImageNameError).message, { code: 'E_UNSUPPORTED', cause: e });
  }
  if (ref.tag === undefined) {
    throw new BuildkitError(`cannot push ${name}: a push needs a tag, not only a digest`, {
      code: 'E_UNSUPPORTED',
    });
  }
  const repo = `${ref.domain}/${ref.path}`;
  const shown = ref.full;
  const digest = `sha256:${nodeCrypto().createHash('sha256').update(`ktl push ${shown} ${Date.now()}`).digest('hex')}`;
  const started = new Date();
  const vertexName = `pushing ${shown} with docker`;
  const emit = (s: Partial<StatusResponse>) =>
    opts.onStatus?.({ vertexes: [], statuses: [], logs: [], warnings: [], ...s });
  const vertex = (completed: Date | undefined, error = '') =>
    emit({
      vertexes: [
        {
          digest,
          name: vertexName,
          inputs: [],
          cached: false,
          started,
          completed,
          error,
          progressGroup: undefined,
        },
      ],
    });
  const layers = new Map<string, VertexStatus>();
  const layer = (m: JsonMessage) => {
    if (!m.id || m.id === ref.tag) return;
    const now = new Date();
    const prev = layers.get(m.id);
    const done = m.status === 'Pushed' || m.status === 'Layer already exists';
    const current = m.progressDetail?.current ?? Number(prev?.current ?? 0);
    // The engine's total is the layer's size before compression, its current the bytes sent:
    // a small layer "grows" past it. A total below what was sent means nothing.
    const total = m.progressDetail?.total ?? Number(prev?.total ?? 0);
    const st: VertexStatus = {
      ID: `pushing layer ${m.id}`,
      vertex: digest,
      name: `pushing layer ${m.id}`,
      current: BigInt(current),
      total: BigInt(total >= current ? total : 0),
      timestamp: now,
      started: prev?.started ?? now,
      completed: done ? now : undefined,
    };
    layers.set(m.id, st);
    emit({ statuses: [st] });
  };
  const log = (text: string) =>
    emit({
      logs: [{ vertex: digest, timestamp: new Date(), stream: 1n, msg: Buffer.from(`${text}\n`) }],
    });
  const fail = (message: string, cause?: unknown): never => {
    vertex(new Date(), message);
    throw new BuildkitError(`failed to push ${shown}: ${message}`, {
      code: 'E_SOLVE',
      cause,
      hint: 'check the registry address, that the engine can reach it, and your credentials (docker login)',
    });
  };

  vertex(undefined);
  if (opts.signal?.aborted) fail('canceled');
  let sock: Awaited<ReturnType<typeof dialRaw>>;
  try {
    sock = await dialRaw(addr.engine, opts.tls);
  } catch (e) {
    return fail(`cannot reach the engine: ${(e as Error).message}`, e);
  }
  const result = await new Promise<{ digest?: string; error?: string }>((resolve) => {
    const req = http.request({
      createConnection: () => sock,
      method: 'POST',
      // parseImageName allowed only [a-z0-9._-/:] and brackets in these: nothing to escape.
      path: `/images/${repo}/push?tag=${encodeURIComponent(ref.tag!)}`,
      headers: {
        Host: 'docker',
        'Content-Length': '0',
        'X-Registry-Auth': registryAuthHeader(ref.domain, opts.credentials),
      },
    });
    const abort = () => {
      req.destroy();
      resolve({ error: 'canceled' });
    };
    opts.signal?.addEventListener('abort', abort, { once: true });
    const settle = (v: { digest?: string; error?: string }) => {
      opts.signal?.removeEventListener('abort', abort);
      resolve(v);
    };
    req.on('error', (e) => settle({ error: e.message }));
    req.on('response', (res) => {
      let buf = '';
      let pushed: string | undefined;
      let error: string | undefined;
      const line = (l: string) => {
        if (l.trim() === '') return;
        let m: JsonMessage;
        try {
          m = JSON.parse(l) as JsonMessage;
        } catch {
          error ??= `the engine answered ${res.statusCode}: ${l.slice(0, 200)}`;
          return;
        }
        if (res.statusCode !== 200) {
          error ??= (m as { message?: string }).message ?? l;
          return;
        }
        if (m.error || m.errorDetail?.message) error ??= m.errorDetail?.message ?? m.error;
        else if (m.aux?.Digest) pushed = m.aux.Digest;
        else if (m.id) layer(m);
        else if (m.status) log(m.status);
      };
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          line(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      res.on('end', () => {
        line(buf);
        if (res.statusCode !== 200)
          error ??= `the engine answered ${res.statusCode} ${res.statusMessage ?? ''}`.trim();
        settle(error === undefined ? { ...(pushed ? { digest: pushed } : {}) } : { error });
      });
      res.on('error', (e) => settle({ error: e.message }));
    });
    req.end();
  });
  if (result.error !== undefined) return fail(result.error);
  vertex(new Date());
  return { digest: result.digest };
}
