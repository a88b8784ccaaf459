import { Args, Command, Flags } from '@oclif/core';
import { buildCommand } from '../build/command';
import { EXIT_CODE_HELP } from '../build/exit-codes';
import { type FlagShape, lastFlagWins } from '../build/last-flag-wins';
import { reportParseError } from '../parse-errors';
import { mark } from '../timing';
import { builderFlags } from './builder-flags';

// Repeatable flags take one value per occurrence (`--platform a --platform b`, or a comma
// list where the flag allows one), as docker's do: a later bare word is the CONTEXT argument,
// not another value (`ktl build --platform linux/amd64 .`).
const many = { multiple: true, multipleNonGreedy: true } as const;

export default class Build extends Command {
  static override summary =
    'Build a Dockerfile with BuildKit; on Linux the build client runs inside a sandbox.';
  static override description =
    'Sends CONTEXT to a BuildKit builder (--builder or --context, else BUILDKIT_HOST, DOCKER_HOST, ' +
    'the docker context in use, the ktl-managed builder, the default sockets) and exports the result. Without an output flag the result stays in the build cache, ' +
    'except that -t alone loads the image into the engine, as docker build does.\n' +
    'By default on Linux ktl re-executes itself inside a sandbox (nsjail or bubblewrap) that sees ' +
    'only the context, what the command line names, and a gateway to the builder that forwards ' +
    'only the BuildKit API.\n' +
    `${EXIT_CODE_HELP} 71: the sandbox could not run ktl.`;
  static override examples = [
    '<%= config.bin %> build testdata/build/hello -o type=local,dest=out',
    '<%= config.bin %> build . -t app:dev --load --build-arg VERSION=1',
    '<%= config.bin %> build . -f docker/Dockerfile --target prod -t 127.0.0.1:5000/app:1 --push',
    '<%= config.bin %> build . --secret id=npmrc,src=$HOME/.npmrc --build-context assets=../assets',
    '<%= config.bin %> build . --platform linux/amd64,linux/arm64 -t 127.0.0.1:5000/app:1 --push --metadata-file meta.json',
    'KTL_SANDBOX_CONFIG=testdata/sandbox/linux-strict.cfg <%= config.bin %> build . --sandbox-logs',
  ];
  static override args = {
    context: Args.string({ description: 'build context directory', required: true }),
  };
  static override flags = {
    file: Flags.string({
      char: 'f',
      description: 'Dockerfile (default CONTEXT/Dockerfile; - reads stdin)',
    }),
    tag: Flags.string({ char: 't', ...many, description: 'image name, e.g. app:1.0' }),
    'build-arg': Flags.string({
      ...many,
      description: 'KEY=VALUE, or KEY to take it from the environment',
    }),
    target: Flags.string({ description: 'stage to build' }),
    platform: Flags.string({
      ...many,
      description:
        'target platform(s): --platform linux/amd64,linux/arm64 or the flag repeated; several make a multi-platform build (an image index, or a directory per platform for local/tar outputs)',
    }),
    attest: Flags.string({
      ...many,
      description:
        'make an attestation: type=provenance[,mode=min|max][,builder-id=...][,disabled=true]',
    }),
    provenance: Flags.string({
      description: 'shorthand for --attest type=provenance: true, false or mode=min|max',
    }),
    sbom: Flags.string({
      description: 'SBOM attestations are not supported (only --sbom=false is accepted)',
    }),
    label: Flags.string({ ...many, description: 'image label KEY=VALUE' }),
    'no-cache': Flags.boolean({ description: 'do not use the build cache' }),
    'keep-setid': Flags.boolean({
      description:
        'local exports keep setuid/setgid bits on files (stripped by default, unlike buildx: a build must not drop a set-id binary into your tree)',
    }),
    pull: Flags.boolean({ description: 'always fetch base images from their registry' }),
    'build-context': Flags.string({ ...many, description: 'NAME=DIR or NAME=docker-image://REF' }),
    secret: Flags.string({ ...many, description: 'id=ID,src=PATH or id=ID,env=VAR' }),
    ssh: Flags.string({
      ...many,
      description:
        'forward an ssh agent to RUN --mount=type=ssh: default ($SSH_AUTH_SOCK), ID (same) or ID=SOCKET',
    }),
    network: Flags.string({ description: 'network of RUN steps: default, none or host' }),
    allow: Flags.string({
      ...many,
      description:
        'grant an entitlement: network.host or security.insecure (RUN --security=insecure); the builder must allow it too',
    }),
    'add-host': Flags.string({ ...many, description: 'HOST:IP added to /etc/hosts of RUN steps' }),
    output: Flags.string({
      char: 'o',
      ...many,
      description:
        'type=local,dest=DIR[,platform-split=true|false] | type=tar,dest=FILE | type=oci|docker,dest=FILE | type=image,name=N[,push=true] | type=registry | type=cacheonly',
    }),
    'cache-from': Flags.string({
      ...many,
      description:
        'reuse build cache from type=registry,ref=REF (a cache pushed with --cache-to, or an image with inline cache; REF alone means the same) | type=local,src=DIR[,tag=T|digest=D] (a directory written by --cache-to type=local)',
    }),
    'cache-to': Flags.string({
      ...many,
      description:
        'export the build cache: type=registry,ref=REF[,mode=min|max][,image-manifest=true|false][,oci-mediatypes=true|false] | type=local,dest=DIR[,mode=min|max][,tag=T][,compression=gzip|zstd|...][,oci-mediatypes=...] (an OCI layout directory) | type=inline (into the pushed image)',
    }),
    load: Flags.boolean({ description: 'store the image in the engine (docker image ls)' }),
    push: Flags.boolean({ description: 'push the -t images to their registry' }),
    progress: Flags.string({
      description:
        'auto (tty on a terminal, else plain), plain, tty (redrawn in place), quiet or rawjson',
      default: 'auto',
    }),
    quiet: Flags.boolean({ char: 'q', description: 'no progress; print the image id' }),
    builder: Flags.string({ description: 'builder address (docker://..., unix://..., tcp://...)' }),
    ...builderFlags,
    iidfile: Flags.string({ description: 'write the image id to this file' }),
    'metadata-file': Flags.string({
      description:
        "write the build result here, in buildx's format (containerimage.digest, image.name, buildx.build.ref, buildx.build.provenance, ...)",
    }),
    sandbox: Flags.boolean({
      description: 'require the sandbox (fail when no runtime is available)',
    }),
    'sandbox-config': Flags.string({
      description: 'sandbox policy file (nsjail .cfg); also KTL_SANDBOX_CONFIG',
    }),
    'sandbox-runtime': Flags.string({
      description: 'sandbox runtime',
      options: ['auto', 'nsjail', 'bwrap'],
    }),
    'sandbox-logs': Flags.boolean({
      description: "show the sandbox runtime's [sandbox] log lines",
    }),
    'sandbox-bind': Flags.string({
      ...many,
      description: 'extra bind HOST:GUEST[:ro] into the sandbox',
    }),
    hermetic: Flags.boolean({
      description: 'no network for the build client (hermetic policy) nor for RUN steps',
    }),
  };

  async run(): Promise<void> {
    mark('outer: command loaded');
    const { args, flags } = await this.parse(
      Build,
      lastFlagWins(this.argv, Build.flags as Record<string, FlagShape>),
    );
    await buildCommand(args, flags);
  }

  /** oclif's own parse errors (unknown flag, missing argument, bad option) exit 2 too. */
  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    return reportParseError(err, 'build') ? undefined : super.catch(err);
  }
}
