import { Command, Flags } from '@oclif/core';
import { reportParseError } from '../../parse-errors';
import { builderFlags } from '../builder-flags';

interface Probe {
  source: string;
  address: string;
  status: 'selected' | 'answers' | 'unreachable' | 'invalid' | 'tls-failed';
  reason?: string;
  /** For a builder that answers: rootless or rootful, how that is known, its entitlements. */
  rootless: boolean | null;
  rootlessBasis?: string;
  entitlements: string[] | null;
  entitlementsRefused?: string[];
  entitlementsUnknown?: Record<string, string>;
}

export default class BuilderLs extends Command {
  static override summary = 'Show which builder `ktl build` would use, and why.';
  static override description =
    'Lists the places `ktl build` looks for a builder, in order (BUILDKIT_HOST, DOCKER_HOST, ' +
    "the docker context in use (DOCKER_CONTEXT, else the docker config's currentContext), " +
    'the ktl-managed builder from `ktl builder start`, the default buildkitd socket, the ' +
    'default Docker socket), whether each answers, and which is selected: the first that ' +
    'answers. For each that answers: rootless or rootful (a Docker engine says so in its ' +
    "security options; a buildkitd is taken to run as its socket's owner) and which of " +
    'network.host and security.insecure it grants (asked with an empty Solve each): on a ' +
    "rootful builder these reach the host's loopback services and make a RUN step root on the " +
    'host. For the selected one: how it is reached, its BuildKit version, the engine API ' +
    'version of a Docker engine, and its workers with their platforms and labels. --builder ' +
    'looks at that address only, --context at that docker context only; the --tls* flags (as buildctl) give the TLS of a tcp:// ' +
    'builder. A candidate whose TLS fails its checks stops the search, as for `ktl build`.\n' +
    'Exit status: 0 a builder answers, 2 bad usage (e.g. an unparseable --builder), 3 no ' +
    'builder reachable, 7 the TLS to the builder failed.';
  static override examples = [
    '<%= config.bin %> builder ls',
    '<%= config.bin %> builder ls --builder docker://unix:///var/run/docker.sock --json',
  ];
  static override flags = {
    builder: Flags.string({
      description: 'look at this address only (docker://, unix://, tcp://)',
    }),
    json: Flags.boolean({ description: 'print candidates and the selected builder as JSON' }),
    timeout: Flags.integer({ description: 'seconds to wait for each candidate', default: 5 }),
    ...builderFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(BuilderLs);
    // Loaded on use: `ktl` start-up must not pay for the gRPC client.
    const bk = await import('@ktl/buildkit-client');
    const { managedCandidates } = await import('../../builder/managed');
    const { builderRisk } = await import('../../builder/risk');
    const view = await import('../../builder/cache-view');
    const timeoutMs = flags.timeout * 1000;

    let list: ReturnType<typeof bk.candidates>;
    try {
      const { builderTlsFromFlags } = await import('../../build/builder-tls');
      const tlsFlags = builderTlsFromFlags(flags, process.cwd());
      if (flags.builder !== undefined) {
        bk.parseAddress(flags.builder);
        list = [
          bk.namedCandidate('--builder', flags.builder, { tlsFlags, context: flags.context }),
        ];
      } else
        list = bk.candidates({
          preferred: managedCandidates(process.env),
          tlsFlags,
          context: flags.context,
        });
    } catch (e) {
      if (e instanceof Error && e.name === 'BuildUsageError') {
        process.stderr.write(`ERROR: ${e.message}\n`);
        process.exitCode = view.CacheExit.USAGE;
      } else process.exitCode = view.report(e);
      return;
    }

    const probes: Probe[] = [];
    // `ktl build` stops at a TLS failure or a builder it cannot use (a docker context over
    // ssh) rather than build elsewhere: nothing after it is selected.
    let stopped: { message: string; hint: string | undefined; tls: boolean } | undefined;
    let selected:
      | { conn: Awaited<ReturnType<typeof bk.connectTo>>; c: (typeof list)[number] }
      | undefined;
    for (const c of list) {
      if (!c.address) {
        probes.push({
          source: c.source,
          address: c.raw,
          status: 'invalid',
          reason: c.parseError ?? 'invalid',
          rootless: null,
          entitlements: null,
        });
        if (c.refused && !selected && !stopped)
          stopped = { message: c.refused.message, hint: c.refused.hint, tls: false };
        continue;
      }
      const address = bk.formatAddress(c.address);
      try {
        if (c.tlsError) throw c.tlsError;
        const conn = await bk.connectTo(c.address, { verify: true, tls: c.tls, timeoutMs });
        const risk = await builderRisk(conn, c.tls, timeoutMs);
        probes.push({
          source: c.source,
          address,
          status: selected || stopped ? 'answers' : 'selected',
          ...risk,
        });
        if (selected || stopped) await conn.close();
        else selected = { conn, c };
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        const tls = bk.BuildkitError.is(e) && e.code === 'E_TLS';
        if (tls && !selected && !stopped)
          stopped = { message: `${c.source}: ${msg}`, hint: (e as { hint?: string }).hint, tls };
        probes.push({
          source: c.source,
          address,
          status: tls ? 'tls-failed' : 'unreachable',
          reason: msg.replace(/^cannot reach builder at \S+: /, ''),
          rootless: null,
          entitlements: null,
        });
      }
    }

    let details: Record<string, unknown> | null = null;
    if (selected) {
      const { conn, c } = selected;
      try {
        const [info, workers, api] = await Promise.all([
          conn.info(timeoutMs).then(
            (v) => ({ ok: true as const, v }),
            (e: Error) => ({ ok: false as const, reason: e.message }),
          ),
          conn.listWorkers(timeoutMs).then(
            (v) => ({ ok: true as const, v }),
            (e: Error) => ({ ok: false as const, reason: e.message }),
          ),
          bk.engineApiVersion(conn.address, c.tls, timeoutMs),
        ]);
        const risk = probes.find((p) => p.status === 'selected');
        details = {
          source: c.source,
          address: conn.address,
          transport: conn.transport ?? null,
          rootless: risk?.rootless ?? null,
          rootlessBasis: risk?.rootlessBasis ?? null,
          entitlements: risk?.entitlements ?? null,
          buildkit: info.ok ? info.v : null,
          ...(info.ok ? {} : { buildkitError: info.reason }),
          engineApiVersion: api ?? null,
          workers: workers.ok ? workers.v : [],
          ...(workers.ok ? {} : { workersError: workers.reason }),
        };
      } finally {
        await conn.close();
      }
    }

    if (flags.json) {
      this.log(JSON.stringify({ candidates: probes, selected: details }, null, 2));
    } else {
      this.log('CANDIDATES (in the order ktl build tries them; the first that answers is used)');
      const rows = probes.map((p) => [
        p.status === 'selected' ? '*' : ' ',
        p.source,
        p.address,
        p.rootless === null ? '-' : p.rootless ? 'rootless' : 'rootful',
        p.entitlements === null ? '-' : p.entitlements.join(',') || 'none',
        p.reason ? `${p.status}: ${p.reason}` : p.status,
      ]);
      for (const l of view.table([
        [' ', 'SOURCE', 'ADDRESS', 'MODE', 'ENTITLEMENTS', 'STATUS'],
        ...rows,
      ]))
        this.log(l);
      if (details) await this.printDetails(details, view.table);
    }
    if (!selected && stopped) {
      process.stderr.write(
        `ERROR: ${stopped.message}\n${stopped.hint ? `hint: ${stopped.hint}\n` : ''}`,
      );
      process.exitCode = stopped.tls
        ? (await import('../../build/exit-codes')).ExitCode.TLS
        : view.CacheExit.USAGE;
    } else if (!selected) {
      const what = flags.builder !== undefined ? `the builder at ${flags.builder}` : 'no builder';
      process.stderr.write(
        `ERROR: ${what} ${flags.builder !== undefined ? 'does not answer' : 'answered'}\n` +
          `hint: ${flags.builder !== undefined ? 'check the address, or drop --builder to see what discovery finds' : (await import('../../builder/managed')).START_HINT}\n`,
      );
      process.exitCode = view.CacheExit.NO_BUILDER;
    }
  }

  private async printDetails(
    d: Record<string, unknown>,
    table: (r: string[][]) => string[],
  ): Promise<void> {
    const b = d.buildkit as { package: string; version: string; revision: string } | null;
    const workers = d.workers as {
      id: string;
      platforms: string[];
      labels: Record<string, string>;
    }[];
    const ents = d.entitlements as string[] | null;
    const kv: string[][] = [
      ['selected:', `${d.address} (${d.source})`],
      ['transport:', String(d.transport ?? 'unknown')],
      ['mode:', `${d.rootless ? 'rootless' : 'rootful'} (${d.rootlessBasis})`],
      ['entitlements:', ents === null ? 'unknown' : ents.join(', ') || 'none granted'],
      [
        'buildkit:',
        b
          ? `${b.version || 'unknown version'}${b.package ? ` (${b.package}${b.revision ? ` ${b.revision}` : ''})` : ''}`
          : `unknown (${d.buildkitError})`,
      ],
    ];
    if (String(d.address).startsWith('docker://'))
      kv.push(['engine API:', String(d.engineApiVersion ?? 'unknown')]);
    this.log('');
    for (const l of table(kv)) this.log(l);
    if (!d.rootless && ents && ents.length > 0) {
      const { rootfulExposure } = await import('../../builder/risk');
      this.log(`risk: ${rootfulExposure(ents)} (rootless: ktl builder start)`);
    }
    this.log(`workers: ${d.workersError ? `unknown (${d.workersError})` : workers.length}`);
    for (const w of workers) {
      this.log(`  ${w.id}`);
      this.log(`    platforms: ${w.platforms.join(', ')}`);
      const labels = Object.entries(w.labels).sort(([a], [b]) => a.localeCompare(b));
      if (labels.length > 0) {
        this.log('    labels:');
        for (const [k, v] of labels) this.log(`      ${k}=${v}`);
      }
    }
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    return reportParseError(err, 'builder ls') ? undefined : super.catch(err);
  }
}
