import { Command, Flags } from '@oclif/core';
import { reportParseError } from '../../parse-errors';

export default class BuilderPrune extends Command {
  static override summary = "Remove build cache from the builder's store.";
  static override description =
    'Like `docker buildx prune`, on the builder `ktl build` would use (--builder, else ' +
    'BUILDKIT_HOST, DOCKER_HOST, the ktl-managed builder, the default sockets). Without --all ' +
    'only cache that no build is using and that is private to the builder goes; internal and ' +
    'frontend records and records shared with images stay. --all removes those too. ' +
    '--keep-storage keeps that much cache (least recently used goes first). Filters as in ' +
    '`ktl builder du` (prune by id: some engines, e.g. Docker 26, match description only in du); ' +
    'until=24h keeps what was used in the last 24 hours. Asks for ' +
    'confirmation on a terminal; elsewhere --force is required.\n' +
    'Exit status: 0 pruned, 1 declined at the prompt (also Ctrl-D), 2 bad usage (also: not a ' +
    'terminal and no --force), 3 no builder reachable, 4 the builder failed the request, 130 ' +
    'Ctrl-C at the prompt.';
  static override examples = [
    '<%= config.bin %> builder prune',
    '<%= config.bin %> builder prune --force --filter until=72h --keep-storage 10gb',
    '<%= config.bin %> builder prune --force --filter type=source.local',
  ];
  static override flags = {
    builder: Flags.string({ description: 'builder address (docker://..., unix://..., tcp://...)' }),
    all: Flags.boolean({
      char: 'a',
      description: 'also internal/frontend records and cache shared with images',
    }),
    filter: Flags.string({ description: 'key=value filter (repeatable)', multiple: true }),
    'keep-storage': Flags.string({
      description: 'keep this much cache: bytes or 512mb, 10gb, 1.5GiB (k = 1024)',
    }),
    force: Flags.boolean({ char: 'f', description: 'do not ask for confirmation' }),
    verbose: Flags.boolean({ description: 'every field of every removed record' }),
    json: Flags.boolean({ description: 'print the removed records and the total as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(BuilderPrune);
    // Loaded on use: `ktl` start-up must not pay for the gRPC client.
    const { cacheFilter, humanSize, parseSize, prune } = await import('@ktl/buildkit-client');
    const view = await import('../../builder/cache-view');
    const filters = flags.filter ?? [];
    let conn: Awaited<ReturnType<typeof view.connectBuilder>> | undefined;
    try {
      // Everything is checked before asking, and before any network.
      cacheFilter(filters);
      const keep = flags['keep-storage'] === undefined ? 0 : parseSize(flags['keep-storage']);
      if (!flags.force) {
        const what = flags.all
          ? 'all build cache that is not in use'
          : 'all unused build cache private to the builder';
        if (!process.stdin.isTTY) {
          throw new view.CommandError(
            `refusing to prune without confirmation: stdin is not a terminal (this would remove ${what})`,
            view.CacheExit.USAGE,
            'add --force (-f) to prune without asking',
          );
        }
        const answer = await confirm(
          `WARNING! This will remove ${what}. Are you sure you want to continue? [y/N] `,
        );
        if (answer !== 'yes') {
          process.stderr.write(
            answer === 'interrupted' ? 'interrupted: not pruned\n' : 'not pruned\n',
          );
          process.exitCode =
            answer === 'interrupted' ? view.CacheExit.INTERRUPTED : view.CacheExit.DECLINED;
          return;
        }
      }
      conn = await view.connectBuilder(flags.builder);
      const quiet = flags.json;
      let header = false;
      const onInterrupt = new AbortController();
      const stop = () => onInterrupt.abort();
      process.once('SIGINT', stop);
      const res = await prune(conn, {
        all: flags.all,
        filters,
        reservedSpace: keep,
        signal: onInterrupt.signal,
        onRecord: (r) => {
          if (quiet) return;
          if (flags.verbose) for (const l of view.recordVerbose(r)) this.log(l);
          else {
            if (!header) this.log(view.streamRow(view.RECORD_HEADER));
            header = true;
            this.log(view.streamRow(view.recordRow(r)));
          }
        },
      }).finally(() => process.removeListener('SIGINT', stop));
      if (flags.json) {
        this.log(
          JSON.stringify(
            {
              builder: conn.address,
              records: res.records.map(view.recordJson),
              reclaimed: res.reclaimed,
            },
            null,
            2,
          ),
        );
      } else this.log(`Total reclaimed: ${humanSize(res.reclaimed)}`);
    } catch (e) {
      process.exitCode = view.report(e);
    } finally {
      await conn?.close();
    }
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    return reportParseError(err, 'builder prune') ? undefined : super.catch(err);
  }
}

/**
 * Asks on the terminal. `y` or `yes` prunes; anything else, an empty line or end of input
 * (Ctrl-D) declines, as docker's prompt does; Ctrl-C (the terminal is in raw mode while
 * readline edits the line, so it arrives as a key, not a signal) is an interrupt.
 */
async function confirm(question: string): Promise<'yes' | 'no' | 'interrupted'> {
  const { createInterface } = await import('node:readline');
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    let settled = false;
    const settle = (a: 'yes' | 'no' | 'interrupted') => {
      if (settled) return;
      settled = true;
      rl.close();
      resolve(a);
    };
    rl.on('SIGINT', () => {
      process.stderr.write('^C\n');
      settle('interrupted');
    });
    rl.on('close', () => {
      if (!settled) process.stderr.write('\n');
      settle('no');
    });
    rl.question(question, (a) => settle(/^y(es)?$/i.test(a.trim()) ? 'yes' : 'no'));
  });
}
