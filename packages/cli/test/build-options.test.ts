/** `ktl build` flag validation: every refusal names the flag and the value. No builder needed. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseBuildOptions, type RawBuildFlags } from '../src/build/options';
import { parseOutput, splitCsv } from '../src/build/output-spec';
import { BuildUsageError } from '../src/build/usage-error';

const cwd = mkdtempSync(join(tmpdir(), 'ktl-opts-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));
mkdirSync(join(cwd, 'ctx'));
writeFileSync(join(cwd, 'ctx', 'Dockerfile'), 'FROM scratch\n');
mkdirSync(join(cwd, 'other'));
writeFileSync(join(cwd, 'other', 'Dockerfile.prod'), 'FROM scratch\n');
writeFileSync(join(cwd, 'token.txt'), 's3cret');

// A real unix socket standing where an ssh agent's would (--ssh checks the path is a socket).
const agentSock = join(cwd, 'agent.sock');
let agentServer: Server;
beforeAll(
  () =>
    new Promise<void>((res) => {
      agentServer = createServer().listen(agentSock, res);
    }),
);
afterAll(() => new Promise<void>((res) => agentServer.close(() => res())));
writeFileSync(join(cwd, 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\n');

const env = { TOKEN: 'from-env', VERSION: '9', SSH_AUTH_SOCK: agentSock };
const parse = (flags: Partial<RawBuildFlags>) =>
  parseBuildOptions({ context: 'ctx', ...flags }, { cwd, env });

function refusal(flags: Partial<RawBuildFlags>): BuildUsageError {
  try {
    parse(flags);
  } catch (e) {
    if (e instanceof BuildUsageError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('parseBuildOptions accepts', () => {
  test('--progress auto: tty when stderr is a terminal (not TERM=dumb), else plain; tty asked for', () => {
    const withTty = (e: Record<string, string>, stderrIsTTY: boolean, progress?: string) =>
      parseBuildOptions({ context: 'ctx', progress }, { cwd, env: { ...env, ...e }, stderrIsTTY });
    expect(withTty({}, true).progress).toBe('tty');
    expect(withTty({}, false).progress).toBe('plain');
    expect(withTty({ TERM: 'dumb' }, true).progress).toBe('plain');
    expect(withTty({}, false, 'tty').progress).toBe('tty');
    expect(withTty({}, true, 'plain').progress).toBe('plain');
    expect(withTty({}, true).terminal).toEqual({
      noColor: false,
      columns: undefined,
      rows: undefined,
    });
    expect(withTty({ NO_COLOR: '1', COLUMNS: '100', LINES: 'x' }, true).terminal).toEqual({
      noColor: true,
      columns: 100,
      rows: undefined,
    });
    expect(withTty({ NO_COLOR: '' }, true).terminal.noColor).toBe(false);
  });

  test('defaults: context made absolute, Dockerfile in it, no outputs, plain progress', () => {
    const o = parse({});
    expect(o.contextDir).toBe(join(cwd, 'ctx'));
    expect(o.dockerfile).toBe(join(cwd, 'ctx', 'Dockerfile'));
    expect(o.outputs).toEqual([]);
    expect(o.progress).toBe('plain');
    expect(o.network).toBe('default');
  });

  test('every flag, normalized', () => {
    const o = parse({
      file: 'other/Dockerfile.prod',
      tag: ['app', 'app', '127.0.0.1:5000/x/app:1'],
      buildArg: ['A=1', 'B=', 'VERSION', 'UNSET'],
      target: 'prod',
      platform: ['linux/amd64,linux/arm64', 'linux/amd64'],
      label: ['org.opencontainers.image.title=App', 'empty='],
      noCache: true,
      pull: true,
      buildContext: [
        'assets=other',
        'base=docker-image://busybox:1.36',
        'repo=https://example.com/r.git',
      ],
      secret: [
        'id=tok,src=token.txt',
        'id=TOKEN',
        'id=e,env=TOKEN',
        'type=file,id=f2,source=token.txt',
      ],
      network: 'host',
      addHost: ['db:10.0.0.5', 'v6=::1', 'gw:host-gateway'],
      output: ['out', 'type=tar,dest=o.tar', 'type=registry'],
      progress: 'quiet',
      builder: 'docker://unix:///var/run/docker.sock',
      iidfile: 'iid',
    });
    expect(o.dockerfile).toBe(join(cwd, 'other', 'Dockerfile.prod'));
    expect(o.tags).toEqual(['docker.io/library/app:latest', '127.0.0.1:5000/x/app:1']);
    // KEY alone takes the environment's value, or is dropped when unset (docker's rule).
    expect(o.buildArgs).toEqual({ A: '1', B: '', VERSION: '9' });
    expect(o.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(o.labels).toEqual({ 'org.opencontainers.image.title': 'App', empty: '' });
    expect(o.buildContexts).toEqual({
      assets: join(cwd, 'other'),
      base: 'docker-image://busybox:1.36',
      repo: 'https://example.com/r.git',
    });
    expect(o.secrets).toEqual([
      { id: 'tok', source: { file: join(cwd, 'token.txt') } },
      { id: 'TOKEN', source: { env: 'TOKEN' } },
      { id: 'e', source: { env: 'TOKEN' } },
      { id: 'f2', source: { file: join(cwd, 'token.txt') } },
    ]);
    expect(o.addHosts).toEqual([
      { host: 'db', ip: '10.0.0.5' },
      { host: 'v6', ip: '::1' },
      { host: 'gw', ip: 'host-gateway' },
    ]);
    expect(o.outputs).toEqual([
      { type: 'local', dest: join(cwd, 'out'), attrs: {} },
      { type: 'tar', dest: join(cwd, 'o.tar'), attrs: {} },
      { type: 'image', names: o.tags, push: true, load: false, attrs: {} },
    ]);
    expect(o.printImageId).toBe(true);
    expect(o.iidfile).toBe(join(cwd, 'iid'));
  });

  test('-t alone loads into the engine; --push and --load add image outputs with the tags', () => {
    expect(parse({ tag: ['a'] }).outputs).toEqual([
      { type: 'image', names: ['docker.io/library/a:latest'], push: false, load: true, attrs: {} },
    ]);
    expect(
      parse({ tag: ['a'], push: true }).outputs.map((o) => o.type === 'image' && o.push),
    ).toEqual([true]);
    expect(parse({ tag: ['a'], push: true, load: true }).outputs).toHaveLength(2);
    expect(parse({ tag: ['a'], output: ['type=local,dest=o'] }).outputs).toHaveLength(1);
  });

  test('-o with its own name= keeps it; quoted CSV; extra attributes pass through', () => {
    const o = parse({ tag: ['t'], output: ['type=image,"name=a,b",push=false,compression=zstd'] });
    expect(o.outputs).toEqual([
      {
        type: 'image',
        names: ['docker.io/library/a:latest', 'docker.io/library/b:latest'],
        push: false,
        load: true,
        attrs: { compression: 'zstd' },
      },
    ]);
    expect(parse({ output: ['type=cacheonly'] }).outputs).toEqual([]);
    expect(splitCsv('"a=x,""y""",b')).toEqual(['a=x,"y"', 'b']);
  });

  test('-f - reads the Dockerfile from stdin; -q means quiet', () => {
    expect(parse({ file: '-' }).dockerfile).toBe('-');
    expect(parse({ quiet: true }).progress).toBe('quiet');
  });
});

describe('parseBuildOptions --ssh', () => {
  test('default and a bare ID are $SSH_AUTH_SOCK, resolved now; ID=SOCKET made absolute', () => {
    expect(parse({}).ssh).toEqual({});
    expect(parse({ ssh: ['default', 'gh', 'other=agent.sock'] }).ssh).toEqual({
      default: agentSock,
      gh: agentSock,
      other: agentSock,
    });
  });

  test.each<[string, string[], Record<string, string | undefined>, string, RegExp]>([
    ['bad id', ['a b=agent.sock'], env, '--ssh "a b=agent.sock": expected ID[=SOCKET]', /e\.g\./],
    ['empty id', ['=agent.sock'], env, '--ssh "=agent.sock": expected ID[=SOCKET]', /e\.g\./],
    [
      'no agent',
      ['default'],
      {},
      '--ssh "default": SSH_AUTH_SOCK is not set',
      /--ssh default=SOCKET/,
    ],
    [
      'socket missing',
      ['x=nope.sock'],
      env,
      `${join(cwd, 'nope.sock')} does not exist`,
      /ssh-add -l/,
    ],
    [
      'a private key file',
      ['x=id_ed25519'],
      env,
      `--ssh "x=id_ed25519": ${join(cwd, 'id_ed25519')} is a file, not an agent socket`,
      /ssh-add KEYFILE/,
    ],
    ['several key files', ['x=id_ed25519,id_ed25519'], env, 'one agent socket per ID', /ssh-agent/],
    ['a directory', ['x=ctx'], env, 'is not a unix socket', /ssh-add/],
    ['id twice', ['default', 'default=agent.sock'], env, 'ssh id "default" given twice', /^$/],
  ])('refuses %s', (_name, ssh, e, message, hint) => {
    let err: unknown;
    try {
      parseBuildOptions({ context: 'ctx', ssh }, { cwd, env: e });
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(BuildUsageError);
    expect((err as BuildUsageError).message).toContain(message);
    expect((err as BuildUsageError).hint ?? '').toMatch(hint);
  });
});

describe('parseBuildOptions --cache-from / --cache-to', () => {
  test('buildx syntax: registry with its fields, refs alone, inline with an image output', () => {
    const o = parse({
      cacheFrom: ['type=registry,ref=127.0.0.1:5000/app:cache', 'app:c1,127.0.0.1:5000/b'],
      cacheTo: [
        'type=registry,ref=127.0.0.1:5000/app:cache,mode=max,image-manifest=true,oci-mediatypes=false',
        'type=inline',
      ],
      tag: ['127.0.0.1:5000/app:1'],
      push: true,
    });
    expect(o.cacheFrom).toEqual([
      { type: 'registry', attrs: { ref: '127.0.0.1:5000/app:cache' } },
      { type: 'registry', attrs: { ref: 'docker.io/library/app:c1' } },
      { type: 'registry', attrs: { ref: '127.0.0.1:5000/b:latest' } },
    ]);
    expect(o.cacheTo).toEqual([
      {
        type: 'registry',
        attrs: {
          ref: '127.0.0.1:5000/app:cache',
          mode: 'max',
          'image-manifest': 'true',
          'oci-mediatypes': 'false',
        },
      },
      { type: 'inline', attrs: {} },
    ]);
    expect(parse({}).cacheTo).toEqual([]);
  });

  test.each<[string, Partial<RawBuildFlags>, string]>([
    ['empty', { cacheTo: [''] }, '--cache-to "": empty cache spec'],
    ['no type', { cacheTo: ['ref=a:b'] }, '--cache-to "ref=a:b": type= is required'],
    ['unknown type', { cacheTo: ['type=gha'] }, 'type=gha: expected registry, inline or local'],
    ['registry without ref', { cacheFrom: ['type=registry'] }, 'type=registry needs ref='],
    ['bad ref', { cacheTo: ['type=registry,ref=App:1'] }, 'repository name must be lowercase'],
    ['bad mode', { cacheTo: ['type=registry,ref=a,mode=all'] }, 'mode=all: expected min or max'],
    [
      'bad bool',
      { cacheTo: ['type=registry,ref=a,image-manifest=yes'] },
      'image-manifest=yes: expected true or false',
    ],
    [
      'unknown field',
      { cacheTo: ['type=registry,ref=a,colour=blue'] },
      'unknown field "colour" for type=registry',
    ],
    [
      'export fields when importing',
      { cacheFrom: ['type=registry,ref=a,mode=max'] },
      '--cache-from "type=registry,ref=a,mode=max": unknown field "mode"',
    ],
    ['bare word with fields', { cacheTo: ['type=inline,x'] }, '"x" is not key=value'],
    ['inline import', { cacheFrom: ['type=inline'] }, 'there is no inline cache importer'],
    ['inline without image', { cacheTo: ['type=inline'] }, 'this build exports none'],
    [
      'inline with fields',
      { cacheTo: ['type=inline,mode=max'], push: true, tag: ['a'] },
      'unknown field "mode"',
    ],
    ['local without dest', { cacheTo: ['type=local'] }, 'type=local needs dest=DIR'],
    [
      'local without src',
      { cacheFrom: ['type=local,dest=x'] },
      'unknown field "dest" for type=local',
    ],
    ['local src empty', { cacheFrom: ['type=local,src='] }, 'type=local needs src=DIR'],
    [
      'local export fields when importing',
      { cacheFrom: ['type=local,src=c,mode=max'] },
      '--cache-from "type=local,src=c,mode=max": unknown field "mode" for type=local',
    ],
    [
      'local import fields when exporting',
      { cacheTo: ['type=local,dest=c,digest=sha256:00'] },
      'unknown field "digest" for type=local',
    ],
    [
      'local bad mode',
      { cacheTo: ['type=local,dest=c,mode=all'] },
      'mode=all: expected min or max',
    ],
    [
      'local bad bool',
      { cacheTo: ['type=local,dest=c,oci-mediatypes=1'] },
      'oci-mediatypes=1: expected true or false',
    ],
    [
      'local bad compression',
      { cacheTo: ['type=local,dest=c,compression=lz4'] },
      'compression=lz4: expected one of uncompressed, gzip, estargz, zstd',
    ],
    [
      'local bad compression level',
      { cacheTo: ['type=local,dest=c,compression-level=high'] },
      'compression-level=high: expected an integer',
    ],
    [
      'local digest not a digest',
      { cacheFrom: ['type=local,src=c,digest=sha256:../../x'] },
      'digest=sha256:../../x is not a digest',
    ],
    [
      'local digest and tag',
      { cacheFrom: [`type=local,src=c,tag=v1,digest=sha256:${'a'.repeat(64)}`] },
      'give digest= or tag=, not both',
    ],
    [
      'local dest a file',
      { cacheTo: ['type=local,dest=token.txt'] },
      'token.txt is not a directory',
    ],
    ['local src a file', { cacheFrom: ['type=local,src=token.txt'] }, 'is not a directory'],
    [
      'local beside registry export',
      { cacheTo: ['type=local,dest=c', 'type=registry,ref=127.0.0.1:5000/a:c'] },
      'a local cache export cannot be combined with another registry or local cache export',
    ],
    [
      'two local exports',
      { cacheTo: ['type=local,dest=c1', 'type=local,dest=c2'] },
      'a local cache export cannot be combined',
    ],
  ])('%s', (_name, flags, message) => {
    expect(refusal(flags).message).toContain(message);
  });

  test('type=local in buildx syntax: paths made absolute, fields kept as given', () => {
    const d = `sha256:${'b'.repeat(64)}`;
    const o = parse({
      cacheFrom: [
        'type=local,src=cache-in',
        `type=local,src=/abs/c,digest=${d}`,
        'type=local,src=c,tag=v2',
      ],
      cacheTo: ['type=local,dest=cache-out,mode=max,compression=zstd,oci-mediatypes=true,tag=v2'],
    });
    expect(o.cacheFrom).toEqual([
      { type: 'local', attrs: { src: join(cwd, 'cache-in') } },
      { type: 'local', attrs: { src: '/abs/c', digest: d } },
      { type: 'local', attrs: { src: join(cwd, 'c'), tag: 'v2' } },
    ]);
    expect(o.cacheTo).toEqual([
      {
        type: 'local',
        attrs: {
          dest: join(cwd, 'cache-out'),
          mode: 'max',
          compression: 'zstd',
          'oci-mediatypes': 'true',
          tag: 'v2',
        },
      },
    ]);
  });

  test('a local export may go with inline cache, and read from its own directory', () => {
    const o = parse({
      cacheFrom: ['type=local,src=c'],
      cacheTo: ['type=local,dest=c', 'type=inline'],
      tag: ['127.0.0.1:5000/app:1'],
      push: true,
    });
    expect(o.cacheTo.map((c) => c.type)).toEqual(['local', 'inline']);
    expect(o.cacheFrom[0]!.attrs!.src).toBe(o.cacheTo[0]!.attrs!.dest);
  });
});

describe('parseBuildOptions refuses, naming flag and value', () => {
  test.each<[string, Partial<RawBuildFlags>, string]>([
    ['missing context', { context: '' }, 'CONTEXT: the build context is required'],
    [
      'context not there',
      { context: 'nope' },
      `CONTEXT "nope": ${join(cwd, 'nope')} does not exist`,
    ],
    ['context is a file', { context: 'token.txt' }, 'is not a directory'],
    ['remote context', { context: 'https://x/y.git' }, 'only a local directory'],
    [
      'no Dockerfile',
      { context: 'other' },
      `--file "Dockerfile": ${join(cwd, 'other', 'Dockerfile')} does not exist`,
    ],
    ['-f a directory', { file: 'other' }, 'is not a file'],
    ['bad tag', { tag: ['App:1'] }, '--tag "App:1": repository name must be lowercase'],
    ['bad tag chars', { tag: ['app:a b'] }, '--tag "app:a b": bad tag'],
    ['build-arg without key', { buildArg: ['=x'] }, '--build-arg "=x": expected KEY=VALUE'],
    ['label without =', { label: ['x'] }, '--label "x": expected KEY=VALUE'],
    ['bad target', { target: 'a b' }, '--target "a b": not a valid stage name'],
    ['bad platform', { platform: ['amd64'] }, '--platform "amd64": expected OS/ARCH[/VARIANT]'],
    [
      'build-context missing dir',
      { buildContext: ['x=nope'] },
      `--build-context "x=nope": ${join(cwd, 'nope')} does not exist`,
    ],
    ['build-context no =', { buildContext: ['x'] }, '--build-context "x": expected KEY=VALUE'],
    [
      'build-context oci-layout',
      { buildContext: ['x=oci-layout://a'] },
      'oci-layout:// contexts are not supported',
    ],
    [
      'build-context bad image',
      { buildContext: ['x=docker-image://UP'] },
      'repository name must be lowercase',
    ],
    ['build-context twice', { buildContext: ['x=other', 'x=other'] }, 'context "x" given twice'],
    [
      'secret without id',
      { secret: ['src=token.txt'] },
      '--secret "src=token.txt": id= is required',
    ],
    ['secret missing file', { secret: ['id=a,src=nope'] }, 'does not exist'],
    ['secret unset env', { secret: ['id=a,env=NOPE'] }, 'environment variable NOPE is not set'],
    ['secret unknown field', { secret: ['id=a,mode=0400'] }, 'unknown field "mode"'],
    [
      'secret src and env',
      { secret: ['id=a,src=token.txt,env=TOKEN'] },
      'give src= or env=, not both',
    ],
    ['secret type=file no src', { secret: ['id=a,type=file'] }, 'type=file needs src=PATH'],
    [
      'secret twice',
      { secret: ['id=TOKEN', 'id=TOKEN'] },
      '--secret "id=TOKEN": secret id given twice',
    ],
    ['network', { network: 'bridge' }, '--network "bridge": expected default, none or host'],
    [
      'allow',
      { allow: ['network.host,device'] },
      '--allow "device": expected network.host or security.insecure',
    ],
    ['add-host no ip', { addHost: ['db'] }, '--add-host "db": expected HOST:IP'],
    ['add-host bad ip', { addHost: ['db:300.1.1.1'] }, 'is not an IP address'],
    ['output unknown type', { output: ['type=s3'] }, '--output "type=s3": unknown type "s3"'],
    ['output local no dest', { output: ['type=local'] }, 'type=local needs dest='],
    ['output stdout', { output: ['-'] }, 'writing to stdout is not supported'],
    [
      'output bad bool',
      { output: ['type=image,name=a,push=maybe'] },
      'push=maybe: expected true or false',
    ],
    ['output dup key', { output: ['type=tar,dest=a,dest=b'] }, '"dest" given twice'],
    ['output bare field', { output: ['type=tar,foo'] }, '"foo" is not key=value'],
    ['output bad name', { output: ['type=image,name=UP'] }, 'repository name must be lowercase'],
    ['push without name', { push: true }, '--push: pushing needs an image name'],
    [
      'registry without name',
      { output: ['type=registry'] },
      '--output: pushing needs an image name',
    ],
    ['cacheonly and more', { output: ['type=cacheonly', 'o'] }, 'cannot be combined'],
    [
      'progress',
      { progress: 'fancy' },
      '--progress "fancy": expected auto, plain, tty, quiet or rawjson',
    ],
    ['builder', { builder: 'ftp://x' }, '--builder "ftp://x"'],
    ['iidfile is a dir', { iidfile: 'other' }, '--iidfile "other": is a directory'],
  ])('%s', (_name, flags, message) => {
    const e = refusal(flags);
    expect(e.message).toContain(message);
  });

  test('hints say what to do', () => {
    expect(refusal({ context: 'other' }).hint).toBe('add a Dockerfile to the context or pass -f');
    expect(refusal({ output: ['type=tar'] }).hint).toBe('e.g. -o type=tar,dest=out.tar');
  });

  test('parseOutput alone: a bare path is a local directory', () => {
    expect(parseOutput('dir', { cwd: '/w', normalizeName: (n) => n })).toEqual({
      type: 'local',
      dest: '/w/dir',
      attrs: {},
    });
  });
});

describe('platforms and attestations', () => {
  test('--platform: comma lists and repeats, normalized as containerd does, duplicates dropped', () => {
    expect(
      parse({
        platform: ['linux/x86_64,linux/aarch64', 'linux/arm64/v8', 'LINUX/AMD64', 'linux/arm'],
      }).platforms,
    ).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    expect(parse({ platform: ['linux/i386', 'linux/armhf', 'linux/arm64/9'] }).platforms).toEqual([
      'linux/386',
      'linux/arm/v7',
      'linux/arm64/v9',
    ]);
    expect(parse({ platform: ['local'] }).platforms).toEqual(['local']);
  });

  test('--provenance is shorthand for --attest type=provenance, as buildx expands it', () => {
    expect(parse({ provenance: 'mode=max' }).attests).toEqual({
      provenance: 'type=provenance,mode=max',
    });
    expect(parse({ provenance: 'true' }).attests).toEqual({
      provenance: 'type=provenance,disabled=false',
    });
    // Disabled: nothing is asked of the frontend.
    expect(parse({ provenance: 'false' }).attests).toEqual({});
    expect(parse({ attest: ['type=provenance,mode=min,builder-id=https://ci/1'] }).attests).toEqual(
      { provenance: 'type=provenance,mode=min,builder-id=https://ci/1' },
    );
    expect(parse({}).attests).toEqual({});
    // --sbom=false asks for nothing, as buildx reads it.
    expect(parse({ sbom: 'false' }).attests).toEqual({});
    expect(parse({ attest: ['type=sbom,disabled=true'] }).attests).toEqual({});
  });

  test('platform-split takes a boolean, as BuildKit parses it', () => {
    expect(parse({ output: ['type=local,dest=o,platform-split=false'] }).outputs[0]).toMatchObject({
      attrs: { 'platform-split': 'false' },
    });
    expect(refusal({ output: ['type=local,dest=o,platform-split=maybe'] }).message).toContain(
      'platform-split=maybe: expected true or false',
    );
  });

  test.each<[string, Partial<RawBuildFlags>, string]>([
    [
      'sbom',
      { attest: ['type=sbom'] },
      '--attest "type=sbom": SBOM attestations are not supported',
    ],
    ['--sbom', { sbom: 'true' }, '--attest "type=sbom,disabled=false": SBOM attestations are not'],
    ['no type', { attest: ['mode=max'] }, '--attest "mode=max": type= is required'],
    ['other type', { attest: ['type=vex'] }, 'type=vex: expected provenance'],
    ['bad mode', { provenance: 'mode=full' }, 'mode=full: expected min or max'],
    ['unknown key', { attest: ['type=provenance,level=3'] }, 'unknown field "level"'],
    ['bad bool', { attest: ['type=provenance,disabled=yes'] }, 'disabled=yes: expected true'],
    ['twice', { attest: ['type=provenance'], provenance: 'true' }, 'type=provenance given twice'],
    [
      'docker archive of several platforms',
      { platform: ['linux/amd64,linux/arm64'], output: ['type=docker,dest=i.tar'] },
      'the docker image format holds one image, not a multi-platform index',
    ],
    [
      'docker archive with attestations',
      { provenance: 'mode=max', output: ['type=docker,dest=i.tar'] },
      'the docker image format cannot carry attestations',
    ],
  ])('refuses: %s', (_name, flags, message) => {
    expect(refusal(flags).message).toContain(message);
  });

  test('a docker archive of one platform, or an OCI archive of several, is fine', () => {
    expect(parse({ output: ['type=docker,dest=i.tar'] }).outputs).toHaveLength(1);
    expect(
      parse({ platform: ['linux/amd64,linux/arm64'], output: ['type=oci,dest=i.tar'] }).outputs,
    ).toHaveLength(1);
    expect(refusal({ output: ['type=docker,dest=i.tar'], platform: ['a/b', 'c/d'] }).hint).toBe(
      'use -o type=oci,dest=FILE (docker load reads it on engines with the containerd image store)',
    );
  });

  test('BUILDX_METADATA_PROVENANCE decides how much provenance the metadata file gets', () => {
    const m = (v: string | undefined) =>
      parseBuildOptions(
        { context: 'ctx', metadataFile: 'm.json' },
        { cwd, env: { BUILDX_METADATA_PROVENANCE: v } },
      ).metadataProvenance;
    expect([undefined, 'min', 'true', 'max', 'disabled', 'false'].map(m)).toEqual([
      'min',
      'min',
      'min',
      'max',
      'disabled',
      'disabled',
    ]);
    expect(() => m('lots')).toThrow(
      'BUILDX_METADATA_PROVENANCE "lots": expected min, max or disabled',
    );
    // Without a metadata file nothing is read from the builder's history.
    expect(parse({}).metadataProvenance).toBe('disabled');
  });
});
