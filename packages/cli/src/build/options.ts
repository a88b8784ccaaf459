/**
 * `ktl build`'s command line, validated into BuildOptions before any builder is contacted.
 * Every refusal is a BuildUsageError naming the flag and its value (exit status 2). Paths are
 * made absolute against `cwd` here, so the result means the same wherever it is used (the
 * sandbox wrapper runs the build with the same paths bound at the same places).
 */
import { type Stats, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import {
  type CacheSpec,
  isRemoteContext,
  normalizeImageName,
  type ProvenanceMetadataMode,
  parseAddress,
  parseDigest,
  type TlsFlags,
} from '@ktl/buildkit-client';
import { canonicalAttest, parseAttests, wantsDefaultProvenance } from './attest';
import { metadataProvenanceMode } from './metadata';
import { type OutputSpec, parseFields, parseOutput } from './output-spec';
import { checkPlatformOutputs, parsePlatforms } from './platforms';
import { BuildUsageError } from './usage-error';

/** The flags as oclif hands them over (repeatable ones as arrays). */
export interface RawBuildFlags {
  readonly context?: string | undefined;
  readonly file?: string | undefined;
  readonly tag?: readonly string[] | undefined;
  readonly buildArg?: readonly string[] | undefined;
  readonly target?: string | undefined;
  readonly platform?: readonly string[] | undefined;
  readonly label?: readonly string[] | undefined;
  readonly noCache?: boolean | undefined;
  readonly keepSetid?: boolean | undefined;
  readonly pull?: boolean | undefined;
  readonly buildContext?: readonly string[] | undefined;
  readonly secret?: readonly string[] | undefined;
  readonly ssh?: readonly string[] | undefined;
  readonly network?: string | undefined;
  readonly allow?: readonly string[] | undefined;
  readonly addHost?: readonly string[] | undefined;
  readonly output?: readonly string[] | undefined;
  readonly cacheFrom?: readonly string[] | undefined;
  readonly cacheTo?: readonly string[] | undefined;
  readonly load?: boolean | undefined;
  readonly push?: boolean | undefined;
  readonly progress?: string | undefined;
  readonly quiet?: boolean | undefined;
  readonly builder?: string | undefined;
  readonly iidfile?: string | undefined;
  readonly metadataFile?: string | undefined;
  readonly attest?: readonly string[] | undefined;
  /** `--provenance VALUE`: shorthand for `--attest type=provenance,VALUE` (true/false toggle). */
  readonly provenance?: string | undefined;
  /** `--sbom VALUE`: buildx's shorthand for `--attest type=sbom,VALUE` (only `false` is accepted). */
  readonly sbom?: string | undefined;
}

export type SecretSource = { readonly file: string } | { readonly env: string };
export type ProgressChoice = 'plain' | 'quiet' | 'rawjson' | 'tty';

/** How the tty progress draws, settled outside the sandbox (whose env has none of this). */
export interface TerminalSettings {
  /** NO_COLOR is set (and not empty): no colors. */
  readonly noColor: boolean;
  /** COLUMNS and LINES, when set: they override the terminal's own size. */
  readonly columns: number | undefined;
  readonly rows: number | undefined;
}

export interface BuildOptions {
  readonly contextDir: string;
  /** Absolute path, or `-` for stdin. */
  readonly dockerfile: string;
  /** Normalized (`docker.io/library/app:latest`). */
  readonly tags: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target: string | undefined;
  /** Normalized (`linux/arm64`, not `linux/aarch64`), without duplicates. */
  readonly platforms: readonly string[];
  /**
   * Attestations to make, as the frontend attributes `attest:<type>` take them (the value as
   * typed, `type=provenance,mode=max`). Empty: none (disabled ones are left out).
   */
  readonly attests: Readonly<Record<string, string>>;
  /**
   * Add buildx's default provenance attestation (attest.ts DEFAULT_PROVENANCE) where the
   * builder makes attestations: no provenance asked for, BUILDX_NO_DEFAULT_ATTESTATIONS unset.
   */
  readonly defaultProvenance: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly noCache: boolean;
  /** Local exports keep setuid/setgid bits (stripped by default). */
  readonly keepSetid: boolean;
  readonly pull: boolean;
  /** name → absolute directory, or a source the builder fetches (`docker-image://...`). */
  readonly buildContexts: Readonly<Record<string, string>>;
  readonly secrets: ReadonlyArray<{ readonly id: string; readonly source: SecretSource }>;
  /** SSH agents for `RUN --mount=type=ssh`: id → absolute path of the agent's socket. */
  readonly ssh: Readonly<Record<string, string>>;
  readonly network: 'default' | 'none' | 'host';
  /** Entitlements asked for with --allow (network.host, security.insecure). */
  readonly allow: readonly string[];
  readonly addHosts: ReadonlyArray<{ readonly host: string; readonly ip: string }>;
  /** Empty: build only (the result stays in the build cache). */
  readonly outputs: readonly OutputSpec[];
  /**
   * `--cache-from`: registry caches (or images carrying inline cache) and local cache
   * directories (`src` absolute) to reuse.
   */
  readonly cacheFrom: readonly CacheSpec[];
  /** `--cache-to`: where the build's cache goes (registry refs normalized, local `dest` absolute). */
  readonly cacheTo: readonly CacheSpec[];
  /** `-o type=cacheonly`: no outputs on purpose (no warning about it). */
  readonly cacheOnly: boolean;
  /** `auto` is settled here: tty when stderr is a terminal (and TERM is not dumb), else plain. */
  readonly progress: ProgressChoice;
  readonly terminal: TerminalSettings;
  /** Print the image id on stdout when done (`-q`, or `--progress quiet`). */
  readonly printImageId: boolean;
  readonly builder: string | undefined;
  /** buildctl's TLS flags (--tlscacert, ...; paths absolute), read by the outer ktl only. */
  readonly builderTls?: TlsFlags | undefined;
  /** `--context`: a docker context names the builder. */
  readonly dockerContext?: string | undefined;
  readonly iidfile: string | undefined;
  readonly metadataFile: string | undefined;
  /** How much provenance the metadata file gets (BUILDX_METADATA_PROVENANCE; see metadata.ts). */
  readonly metadataProvenance: ProvenanceMetadataMode;
}

export interface ParseContext {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Whether stderr is a terminal (for `--progress auto`); false when not given. */
  readonly stderrIsTTY?: boolean | undefined;
  /**
   * Where a path is on this host, when that differs from its name on the command line: a
   * sandboxed build's --sandbox-bind GUEST paths name what is bound there (the options keep
   * the GUEST path, which is what the jailed ktl opens). Existence checks look there.
   */
  readonly hostPath?: ((p: string) => string) | undefined;
}

const positive = (v: string | undefined): number | undefined =>
  v !== undefined && /^[1-9]\d*$/.test(v) ? Number(v) : undefined;

function keyValue(
  flag: string,
  value: string,
  requireValue: boolean,
): [string, string | undefined] {
  const i = value.indexOf('=');
  const k = i < 0 ? value : value.slice(0, i);
  if (k.trim() === '' || /\s/.test(k)) {
    throw new BuildUsageError(
      flag,
      value,
      'expected KEY=VALUE with a non-empty KEY without spaces',
    );
  }
  if (i < 0 && requireValue) throw new BuildUsageError(flag, value, 'expected KEY=VALUE');
  return [k, i < 0 ? undefined : value.slice(i + 1)];
}

function statKind(p: string, ctx?: ParseContext): 'dir' | 'file' | 'other' | undefined {
  try {
    const st = statSync(ctx?.hostPath ? ctx.hostPath(p) : p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch {
    return undefined;
  }
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const SECRET_KEYS = new Set(['id', 'type', 'src', 'source', 'env']);

function normalizeName(flag: string, name: string): string {
  try {
    return normalizeImageName(name);
  } catch (e) {
    throw new BuildUsageError(
      flag,
      name,
      (e as Error).message.replace(/^invalid image name "[^"]*": /, ''),
    );
  }
}

function parseSecret(value: string, ctx: ParseContext): { id: string; source: SecretSource } {
  const flag = '--secret';
  const { fields, bare } = parseFields(flag, value);
  if (bare.length > 0) throw new BuildUsageError(flag, value, `"${bare[0]}" is not key=value`);
  for (const k of fields.keys()) {
    if (!SECRET_KEYS.has(k))
      throw new BuildUsageError(flag, value, `unknown field "${k}"`, 'use id=, src= or env=');
  }
  const id = fields.get('id');
  if (!id)
    throw new BuildUsageError(flag, value, 'id= is required', 'e.g. --secret id=npmrc,src=.npmrc');
  const type = fields.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env') {
    throw new BuildUsageError(flag, value, `type=${type}: expected file or env`);
  }
  const src = fields.get('src') ?? fields.get('source');
  let env = fields.get('env');
  if (src !== undefined && env !== undefined) {
    throw new BuildUsageError(flag, value, 'give src= or env=, not both');
  }
  if (src === undefined && env === undefined) {
    // Like buildx: `--secret id=TOKEN` reads the variable of that name (type=env) or the file.
    if (type === 'file') throw new BuildUsageError(flag, value, 'type=file needs src=PATH');
    env = id;
  }
  if (env !== undefined) {
    if (type === 'file')
      throw new BuildUsageError(flag, value, 'type=file needs src=PATH, not env=');
    if (ctx.env[env] === undefined) {
      throw new BuildUsageError(flag, value, `environment variable ${env} is not set`);
    }
    return { id, source: { env } };
  }
  const file = isAbsolute(src!) ? src! : resolve(ctx.cwd, src!);
  const kind = statKind(file, ctx);
  if (kind !== 'file') {
    throw new BuildUsageError(
      flag,
      value,
      kind === undefined ? `${file} does not exist` : `${file} is not a file`,
    );
  }
  return { id, source: { file } };
}

const SSH_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const AGENT_HINT =
  'load the key into an agent and forward that: eval "$(ssh-agent)"; ssh-add KEYFILE; then --ssh ID (or ID=$SSH_AUTH_SOCK)';

/**
 * `--ssh ID[=SOCKET]` like buildx's: `default` (or any ID without a path) is $SSH_AUTH_SOCK,
 * resolved here so the sandboxed half gets the path itself. Only agent sockets are forwarded;
 * buildx also takes private key files (ID=KEY[,KEY]), which ktl refuses with what to do instead.
 */
function parseSsh(value: string, ctx: ParseContext): [string, string] {
  const flag = '--ssh';
  const i = value.indexOf('=');
  const id = i < 0 ? value : value.slice(0, i);
  if (!SSH_ID.test(id)) {
    throw new BuildUsageError(
      flag,
      value,
      'expected ID[=SOCKET] with an ID of letters, digits, ".", "_" or "-"',
      'e.g. --ssh default or --ssh github=/run/user/1000/ssh-agent.sock',
    );
  }
  const paths = i < 0 ? [] : value.slice(i + 1).split(',');
  if (paths.length > 1) {
    throw new BuildUsageError(flag, value, 'ktl forwards one agent socket per ID', AGENT_HINT);
  }
  let path = paths[0];
  if (path === undefined || path === '') {
    path = ctx.env.SSH_AUTH_SOCK;
    if (path === undefined || path === '') {
      throw new BuildUsageError(
        flag,
        value,
        'SSH_AUTH_SOCK is not set, so there is no agent to forward',
        `start one (eval "$(ssh-agent)"; ssh-add) or name its socket: --ssh ${id}=SOCKET`,
      );
    }
  }
  const abs = isAbsolute(path) ? path : resolve(ctx.cwd, path);
  let st: Stats;
  try {
    st = statSync(ctx.hostPath ? ctx.hostPath(abs) : abs);
  } catch {
    throw new BuildUsageError(
      flag,
      value,
      `${abs} does not exist`,
      'check that the ssh agent is running (ssh-add -l)',
    );
  }
  if (!st.isSocket()) {
    throw new BuildUsageError(
      flag,
      value,
      st.isFile()
        ? `${abs} is a file, not an agent socket: ktl does not load private key files`
        : `${abs} is not a unix socket`,
      AGENT_HINT,
    );
  }
  return [id, abs];
}

function parseBuildContext(value: string, ctx: ParseContext): [string, string] {
  const flag = '--build-context';
  const [name, src] = keyValue(flag, value, true);
  if (src === undefined || src === '')
    throw new BuildUsageError(flag, value, 'expected NAME=SOURCE');
  if (src.startsWith('oci-layout://')) {
    throw new BuildUsageError(
      flag,
      value,
      'oci-layout:// contexts are not supported',
      'push the image to a registry and use docker-image://REF',
    );
  }
  if (src.startsWith('docker-image://')) {
    normalizeName(flag, src.slice('docker-image://'.length));
    return [name, src];
  }
  if (isRemoteContext(src)) return [name, src];
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(src)) {
    throw new BuildUsageError(
      flag,
      value,
      `unsupported source scheme ${src.split(':')[0]}://`,
      'use a directory, docker-image://, https:// or a git URL',
    );
  }
  const dir = isAbsolute(src) ? src : resolve(ctx.cwd, src);
  const kind = statKind(dir, ctx);
  if (kind !== 'dir') {
    throw new BuildUsageError(
      flag,
      value,
      kind === undefined ? `${dir} does not exist` : `${dir} is not a directory`,
    );
  }
  return [name, dir];
}

/** What a cache export takes wherever it goes (BuildKit's remote cache options). */
const CACHE_EXPORT_KEYS = [
  'mode',
  'image-manifest',
  'oci-mediatypes',
  'compression',
  'compression-level',
  'force-compression',
  'ignore-error',
];
const CACHE_TO_REGISTRY_KEYS = new Set(['ref', ...CACHE_EXPORT_KEYS]);
const CACHE_TO_LOCAL_KEYS = new Set(['dest', 'tag', ...CACHE_EXPORT_KEYS]);
const BOOL_KEYS = ['image-manifest', 'oci-mediatypes', 'force-compression', 'ignore-error'];
const CACHE_FROM_LOCAL_KEYS = new Set(['src', 'digest', 'tag']);
/** BuildKit's layer compressions (util/compression). */
const COMPRESSIONS = new Set(['uncompressed', 'gzip', 'estargz', 'zstd']);

/**
 * `type=local`: an OCI layout directory (buildx's syntax). `dest` is created by the build;
 * a `src` that does not exist yet is a cache not made yet (the build warns and goes on, as
 * buildx does), but one that exists must be a directory.
 */
function parseLocalCache(
  flag: '--cache-from' | '--cache-to',
  value: string,
  attrs: Record<string, string>,
  abs: (p: string) => string,
  ctx: ParseContext,
): CacheSpec {
  const key = flag === '--cache-from' ? 'src' : 'dest';
  const keys = flag === '--cache-from' ? CACHE_FROM_LOCAL_KEYS : CACHE_TO_LOCAL_KEYS;
  for (const k of Object.keys(attrs)) {
    if (!keys.has(k)) {
      throw new BuildUsageError(
        flag,
        value,
        `unknown field "${k}" for type=local`,
        `type=local takes ${[...keys].map((x) => `${x}=`).join(', ')} with ${flag}`,
      );
    }
  }
  const dir = attrs[key];
  if (dir === undefined || dir === '') {
    throw new BuildUsageError(
      flag,
      value,
      `type=local needs ${key}=DIR`,
      `e.g. ${flag} type=local,${key}=/tmp/buildcache`,
    );
  }
  attrs[key] = abs(dir);
  const kind = statKind(attrs[key]!, ctx);
  if (kind !== undefined && kind !== 'dir') {
    throw new BuildUsageError(
      flag,
      value,
      `${attrs[key]} is not a directory`,
      'a local cache is a directory in the OCI image layout (index.json, blobs/)',
    );
  }
  if (attrs.mode !== undefined && attrs.mode !== 'min' && attrs.mode !== 'max') {
    throw new BuildUsageError(flag, value, `mode=${attrs.mode}: expected min or max`);
  }
  for (const k of BOOL_KEYS) {
    const v = attrs[k];
    if (v !== undefined && v !== 'true' && v !== 'false')
      throw new BuildUsageError(flag, value, `${k}=${v}: expected true or false`);
  }
  if (attrs.compression !== undefined && !COMPRESSIONS.has(attrs.compression)) {
    throw new BuildUsageError(
      flag,
      value,
      `compression=${attrs.compression}: expected one of ${[...COMPRESSIONS].join(', ')}`,
    );
  }
  const level = attrs['compression-level'];
  if (level !== undefined && !/^-?\d+$/.test(level)) {
    throw new BuildUsageError(flag, value, `compression-level=${level}: expected an integer`);
  }
  if (attrs.tag === '') throw new BuildUsageError(flag, value, 'tag= is empty');
  if (attrs.digest !== undefined) {
    if (!parseDigest(attrs.digest)) {
      throw new BuildUsageError(
        flag,
        value,
        `digest=${attrs.digest} is not a digest`,
        "e.g. digest=sha256:<64 hex digits>, as in the cache directory's index.json",
      );
    }
    if (attrs.tag !== undefined) {
      throw new BuildUsageError(
        flag,
        value,
        'give digest= or tag=, not both',
        'digest= names the cache manifest itself; tag= looks it up in index.json',
      );
    }
  }
  return { type: 'local', attrs };
}

/**
 * One `--cache-from` / `--cache-to` value in buildx's syntax: `type=T,key=value,...`, or refs
 * alone (`REF[,REF...]`, each a registry cache). Returns one spec per cache.
 */
function parseCache(
  flag: '--cache-from' | '--cache-to',
  value: string,
  abs: (p: string) => string,
  ctx: ParseContext,
): CacheSpec[] {
  if (value.trim() === '') {
    throw new BuildUsageError(flag, value, 'empty cache spec', 'e.g. type=registry,ref=REPO:TAG');
  }
  const { fields, bare } = parseFields(flag, value);
  if (fields.size === 0) {
    return bare.map((ref) => ({
      type: 'registry',
      attrs: { ref: normalizeName(flag, ref) },
    }));
  }
  if (bare.length > 0) throw new BuildUsageError(flag, value, `"${bare[0]}" is not key=value`);
  const type = fields.get('type');
  if (type === undefined || type === '') {
    throw new BuildUsageError(
      flag,
      value,
      'type= is required',
      'e.g. type=registry,ref=REPO:TAG or type=inline',
    );
  }
  fields.delete('type');
  const attrs = Object.fromEntries(fields);
  const onlyKeys = (keys: ReadonlySet<string>, hint: string) => {
    for (const k of fields.keys())
      if (!keys.has(k))
        throw new BuildUsageError(flag, value, `unknown field "${k}" for type=${type}`, hint);
  };
  switch (type) {
    case 'registry': {
      const export_ = flag === '--cache-to';
      onlyKeys(
        export_ ? CACHE_TO_REGISTRY_KEYS : new Set(['ref']),
        export_
          ? `type=registry takes ${[...CACHE_TO_REGISTRY_KEYS].map((k) => `${k}=`).join(', ')}`
          : 'type=registry takes ref= only when importing',
      );
      const ref = attrs.ref;
      if (ref === undefined || ref === '') {
        throw new BuildUsageError(
          flag,
          value,
          'type=registry needs ref=',
          'e.g. ref=127.0.0.1:5000/app:buildcache',
        );
      }
      attrs.ref = normalizeName(flag, ref);
      if (attrs.mode !== undefined && attrs.mode !== 'min' && attrs.mode !== 'max') {
        throw new BuildUsageError(flag, value, `mode=${attrs.mode}: expected min or max`);
      }
      for (const k of BOOL_KEYS) {
        const v = attrs[k];
        if (v !== undefined && v !== 'true' && v !== 'false')
          throw new BuildUsageError(flag, value, `${k}=${v}: expected true or false`);
      }
      return [{ type, attrs }];
    }
    case 'inline':
      if (flag === '--cache-from') {
        throw new BuildUsageError(
          flag,
          value,
          'there is no inline cache importer: inline cache is read from the image that carries it',
          '--cache-from type=registry,ref=IMAGE',
        );
      }
      onlyKeys(new Set(), 'type=inline takes no fields');
      return [{ type, attrs }];
    case 'local':
      return [parseLocalCache(flag, value, attrs, abs, ctx)];
    default:
      throw new BuildUsageError(
        flag,
        value,
        `type=${type}: expected registry, inline or local`,
        'e.g. --cache-to type=registry,ref=REPO:buildcache,mode=max',
      );
  }
}

function parseAddHost(value: string): { host: string; ip: string } {
  const flag = '--add-host';
  // host:ip (docker) or host=ip (buildx); an IPv6 address contains colons, so split once.
  const m = /^([^:=]+)[:=](.+)$/.exec(value);
  const host = m?.[1] ?? '';
  const ip = (m?.[2] ?? '').replace(/^\[(.*)\]$/, '$1');
  if (!m || !HOST_NAME.test(host)) {
    throw new BuildUsageError(flag, value, 'expected HOST:IP', 'e.g. --add-host db.local:10.0.0.5');
  }
  if (ip !== 'host-gateway' && isIP(ip) === 0) {
    throw new BuildUsageError(flag, value, `${ip} is not an IP address (or host-gateway)`);
  }
  return { host, ip };
}

export function parseBuildOptions(raw: RawBuildFlags, ctx: ParseContext): BuildOptions {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(ctx.cwd, p));
  if (raw.context === undefined || raw.context === '') {
    throw new BuildUsageError(
      'CONTEXT',
      undefined,
      'the build context is required',
      'e.g. ktl build .',
    );
  }
  if (raw.context === '-' || /^[a-z]+:\/\//.test(raw.context) || raw.context.startsWith('git@')) {
    throw new BuildUsageError(
      'CONTEXT',
      raw.context,
      'only a local directory is supported as the build context',
    );
  }
  const contextDir = abs(raw.context);
  const ck = statKind(contextDir, ctx);
  if (ck !== 'dir') {
    throw new BuildUsageError(
      'CONTEXT',
      raw.context,
      ck === undefined ? `${contextDir} does not exist` : `${contextDir} is not a directory`,
    );
  }
  let dockerfile = '-';
  if (raw.file !== '-') {
    dockerfile = raw.file === undefined ? resolve(contextDir, 'Dockerfile') : abs(raw.file);
    const fk = statKind(dockerfile, ctx);
    if (fk !== 'file') {
      throw new BuildUsageError(
        '--file',
        raw.file ?? 'Dockerfile',
        fk === undefined ? `${dockerfile} does not exist` : `${dockerfile} is not a file`,
        raw.file === undefined ? 'add a Dockerfile to the context or pass -f' : undefined,
      );
    }
  }
  const tags = [...new Set((raw.tag ?? []).map((t) => normalizeName('--tag', t)))];

  const buildArgs: Record<string, string> = {};
  for (const a of raw.buildArg ?? []) {
    const [k, v] = keyValue('--build-arg', a, false);
    // `--build-arg NAME` takes NAME's value from the environment, or is dropped (as docker does).
    const val = v ?? ctx.env[k];
    if (val !== undefined) buildArgs[k] = val;
  }
  const labels: Record<string, string> = {};
  for (const l of raw.label ?? []) {
    const [k, v] = keyValue('--label', l, true);
    labels[k] = v ?? '';
  }
  if (raw.target !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(raw.target)) {
    throw new BuildUsageError('--target', raw.target, 'not a valid stage name');
  }
  const platforms = parsePlatforms(raw.platform ?? []);
  const attests = parseAttests([
    ...(raw.attest ?? []),
    ...(raw.provenance === undefined ? [] : [canonicalAttest('provenance', raw.provenance)]),
    ...(raw.sbom === undefined ? [] : [canonicalAttest('sbom', raw.sbom)]),
  ]);
  const buildContexts: Record<string, string> = {};
  for (const c of raw.buildContext ?? []) {
    const [name, src] = parseBuildContext(c, ctx);
    if (name in buildContexts)
      throw new BuildUsageError('--build-context', c, `context "${name}" given twice`);
    buildContexts[name] = src;
  }
  const secrets = (raw.secret ?? []).map((s) => parseSecret(s, ctx));
  const ids = secrets.map((s) => s.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup !== undefined)
    throw new BuildUsageError('--secret', `id=${dup}`, 'secret id given twice');

  const ssh: Record<string, string> = {};
  for (const v of raw.ssh ?? []) {
    const [id, path] = parseSsh(v, ctx);
    if (Object.hasOwn(ssh, id)) throw new BuildUsageError('--ssh', v, `ssh id "${id}" given twice`);
    ssh[id] = path;
  }

  const network = raw.network ?? 'default';
  if (network !== 'default' && network !== 'none' && network !== 'host') {
    throw new BuildUsageError('--network', network, 'expected default, none or host');
  }
  const addHosts = (raw.addHost ?? []).map(parseAddHost);
  const allow = [...new Set((raw.allow ?? []).flatMap((a) => a.split(',')).map((a) => a.trim()))];
  for (const a of allow) {
    if (a !== 'network.host' && a !== 'security.insecure') {
      throw new BuildUsageError('--allow', a, 'expected network.host or security.insecure');
    }
  }

  const outputs: OutputSpec[] = (raw.output ?? []).map((o) =>
    parseOutput(o, { cwd: ctx.cwd, normalizeName: normalizeImageName }, '--output'),
  );
  // --load and --push are buildx's shorthands for type=docker (into the engine) and
  // type=registry; with -t and no output at all, load like `docker build -t` does.
  const wantLoad =
    raw.load === true || (tags.length > 0 && outputs.length === 0 && raw.push !== true);
  if (wantLoad) outputs.push({ type: 'image', names: [], push: false, load: true, attrs: {} });
  if (raw.push) outputs.push({ type: 'image', names: [], push: true, load: false, attrs: {} });
  // Image outputs without their own name= take the -t names (as buildx does).
  const withNames = outputs.map((o): OutputSpec => {
    if (o.type !== 'image') return o;
    const names = o.names.length > 0 ? o.names : [...tags];
    if (o.push && names.length === 0) {
      throw new BuildUsageError(
        raw.push ? '--push' : '--output',
        undefined,
        'pushing needs an image name',
        'add -t REGISTRY/REPO:TAG (or name= in -o)',
      );
    }
    return { ...o, names };
  });
  if (withNames.some((o) => o.type === 'cacheonly') && withNames.length > 1) {
    throw new BuildUsageError(
      '--output',
      'type=cacheonly',
      'cannot be combined with other outputs',
    );
  }

  const cacheFrom = (raw.cacheFrom ?? []).flatMap((v) => parseCache('--cache-from', v, abs, ctx));
  const cacheTo = (raw.cacheTo ?? []).flatMap((v) => parseCache('--cache-to', v, abs, ctx));
  // The builder answers with one cache manifest per build; a local directory's index.json
  // must name the one written into it.
  const manifestCaches = cacheTo.filter((c) => c.type !== 'inline');
  if (manifestCaches.some((c) => c.type === 'local') && manifestCaches.length > 1) {
    throw new BuildUsageError(
      '--cache-to',
      `type=local,dest=${manifestCaches.find((c) => c.type === 'local')!.attrs!.dest}`,
      'a local cache export cannot be combined with another registry or local cache export in one build',
      'the builder reports one cache manifest per build; export the other cache in a second build (it will be cached)',
    );
  }
  if (cacheTo.some((c) => c.type === 'inline') && !withNames.some((o) => o.type === 'image')) {
    throw new BuildUsageError(
      '--cache-to',
      'type=inline',
      'inline cache travels in an image, and this build exports none',
      'add --push (or -t NAME --load, or -o type=image,name=NAME,push=true)',
    );
  }

  const progress = raw.quiet ? 'quiet' : (raw.progress ?? 'auto');
  if (!['auto', 'plain', 'tty', 'quiet', 'rawjson'].includes(progress)) {
    throw new BuildUsageError(
      '--progress',
      progress,
      'expected auto, plain, tty, quiet or rawjson',
    );
  }
  if (raw.builder !== undefined) {
    try {
      parseAddress(raw.builder);
    } catch (e) {
      throw new BuildUsageError(
        '--builder',
        raw.builder,
        (e as Error).message,
        'e.g. docker://unix:///var/run/docker.sock or unix:///run/buildkit/buildkitd.sock',
      );
    }
  }
  checkPlatformOutputs({ platforms, attests, outputs: withNames });
  // As buildx: local and tar outputs make no image, so there would be no id to write (buildx
  // refuses them beside an image output too; ktl writes that image's id).
  const noImage = withNames.find((o) => o.type === 'local' || o.type === 'tar');
  if (
    raw.iidfile !== undefined &&
    noImage &&
    withNames.every((o) => o.type === 'local' || o.type === 'tar')
  )
    throw new BuildUsageError(
      '--iidfile',
      raw.iidfile,
      'local and tar exporters are incompatible with image ID file',
      `drop --iidfile, or export an image (--load, --push, -o type=oci|docker|image) instead of -o type=${noImage.type}`,
    );
  for (const [flag, p] of [
    ['--iidfile', raw.iidfile],
    ['--metadata-file', raw.metadataFile],
  ] as const) {
    if (p !== undefined && statKind(abs(p), ctx) === 'dir') {
      throw new BuildUsageError(flag, p, 'is a directory', 'give a file name');
    }
  }
  return {
    contextDir,
    dockerfile,
    tags,
    buildArgs,
    target: raw.target,
    platforms,
    attests,
    defaultProvenance: wantsDefaultProvenance(raw.attest ?? [], raw.provenance, ctx.env),
    labels,
    noCache: raw.noCache ?? false,
    keepSetid: raw.keepSetid ?? false,
    pull: raw.pull ?? false,
    buildContexts,
    secrets,
    ssh,
    network,
    allow,
    addHosts,
    outputs: withNames.filter((o) => o.type !== 'cacheonly'),
    cacheFrom,
    cacheTo,
    cacheOnly: withNames.some((o) => o.type === 'cacheonly'),
    progress:
      progress === 'auto'
        ? ctx.stderrIsTTY === true && ctx.env.TERM !== 'dumb'
          ? 'tty'
          : 'plain'
        : (progress as ProgressChoice),
    terminal: {
      noColor: (ctx.env.NO_COLOR ?? '') !== '',
      columns: positive(ctx.env.COLUMNS),
      rows: positive(ctx.env.LINES),
    },
    printImageId: progress === 'quiet',
    builder: raw.builder,
    iidfile: raw.iidfile === undefined ? undefined : abs(raw.iidfile),
    metadataFile: raw.metadataFile === undefined ? undefined : abs(raw.metadataFile),
    metadataProvenance:
      raw.metadataFile === undefined ? 'disabled' : metadataProvenanceMode(ctx.env),
  };
}
