import { Command, Flags } from '@oclif/core';

export default class SandboxDoctor extends Command {
  static override summary =
    'Check what sandboxing this machine can do: runtimes, namespaces, cgroups, seccomp, live probes.';
  static override description =
    'Also reports the builder `ktl build` would use (as discovery finds it, or --builder): ' +
    'rootless or rootful, and which of network.host and security.insecure it grants. The ' +
    'sandbox confines the build client only; RUN steps run in the builder, and on a rootful ' +
    "one those entitlements reach the host's loopback services and make a step root on the " +
    'host.\n' +
    'Exit status 0 when a runtime works and every live probe passed, 1 otherwise (the ' +
    "builder's report does not change it).";
  static override examples = [
    '<%= config.bin %> sandbox doctor',
    '<%= config.bin %> sandbox doctor --json',
  ];
  static override flags = {
    json: Flags.boolean({ description: 'print the report as JSON' }),
    builder: Flags.string({ description: 'report on this builder address instead of discovery' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SandboxDoctor);
    // Loaded on use: `ktl` start-up must not pay for every command's dependencies.
    const { doctor } = await import('@ktl/sandbox-runner');
    const { selectedBuilder, formatSelectedBuilder } = await import('../../builder/selected');
    const [r, builder] = await Promise.all([doctor(), selectedBuilder(flags.builder)]);
    if (flags.json) {
      this.log(JSON.stringify({ ...r, builder }, null, 2));
    } else {
      const mark = (ok: boolean) => (ok ? 'ok  ' : 'FAIL');
      for (const name of ['nsjail', 'bwrap'] as const) {
        const rt = r.runtimes[name];
        this.log(
          `${rt ? 'ok  ' : '--  '} ${name}: ${rt ? `${rt.path}${rt.version ? ` ${rt.version}` : ''} (via ${rt.via})${rt.note ? `; ${rt.note}` : ''}` : 'not found'}`,
        );
      }
      this.log(
        `     auto selects: ${r.selected ?? 'nothing (install bubblewrap: apt-get install bubblewrap)'}`,
      );
      this.log(`${mark(r.userNamespaces.ok)} user namespaces: ${r.userNamespaces.detail}`);
      this.log(`${mark(r.seccomp.ok)} seccomp: ${r.seccomp.detail}`);
      this.log(`     cgroups: ${r.cgroups.layout}`);
      for (const [k, c] of Object.entries(r.cgroups.limits))
        this.log(`${mark(c.ok)} cgroup ${k} limit: ${c.detail}`);
      for (const p of r.probes) this.log(`${mark(p.ok)} ${p.runtime} probe ${p.name}: ${p.detail}`);
      for (const l of formatSelectedBuilder(builder)) this.log(l);
    }
    if (!r.ok) this.exit(1);
  }
}
