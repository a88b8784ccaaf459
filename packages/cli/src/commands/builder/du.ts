import { Command, Flags } from '@oclif/core';
import { reportParseError } from '../../parse-errors';

export default class BuilderDu extends Command {
  static override summary = "Show the builder's build cache: each record and the totals.";
  static override description =
    'Asks the builder `ktl build` would use (--builder, else BUILDKIT_HOST, DOCKER_HOST, the ' +
    'ktl-managed builder, the default sockets) for its cache records, like `docker buildx du`. ' +
    'A `*` after an ID marks a mutable record, after a size a record shared with images. ' +
    'Filters are key=value (repeatable, all must hold): id (prefix), type (regular, ' +
    'source.local, exec.cachemount, ...), description, parents, until (unused for at least ' +
    'this long, e.g. 24h), and inuse, mutable, immutable, shared, private without a value; ' +
    'key!=value and key~=regexp also work.\n' +
    'Exit status: 0 ok, 2 bad usage, 3 no builder reachable, 4 the builder failed the request.';
  static override examples = [
    '<%= config.bin %> builder du',
    '<%= config.bin %> builder du --filter type=source.local --verbose',
    '<%= config.bin %> builder du --filter until=24h --json',
  ];
  static override flags = {
    builder: Flags.string({ description: 'builder address (docker://..., unix://..., tcp://...)' }),
    filter: Flags.string({ description: 'key=value filter (repeatable)', multiple: true }),
    verbose: Flags.boolean({ description: 'every field of every record' }),
    json: Flags.boolean({ description: 'print records and totals as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(BuilderDu);
    // Loaded on use: `ktl` start-up must not pay for the gRPC client.
    const { cacheFilter, diskUsage, summarizeUsage } = await import('@ktl/buildkit-client');
    const view = await import('../../builder/cache-view');
    const filters = flags.filter ?? [];
    let conn: Awaited<ReturnType<typeof view.connectBuilder>> | undefined;
    try {
      cacheFilter(filters); // a bad filter fails before any network
      conn = await view.connectBuilder(flags.builder);
      const records = await diskUsage(conn, { filters });
      const summary = summarizeUsage(records);
      if (flags.json) {
        this.log(
          JSON.stringify(
            { builder: conn.address, records: records.map(view.recordJson), summary },
            null,
            2,
          ),
        );
        return;
      }
      if (flags.verbose)
        for (const r of records) for (const l of view.recordVerbose(r)) this.log(l);
      else if (records.length > 0) {
        for (const l of view.table([[...view.RECORD_HEADER], ...records.map(view.recordRow)]))
          this.log(l);
        this.log('');
      }
      for (const l of view.summaryLines(summary)) this.log(l);
    } catch (e) {
      process.exitCode = view.report(e);
    } finally {
      await conn?.close();
    }
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    return reportParseError(err, 'builder du') ? undefined : super.catch(err);
  }
}
