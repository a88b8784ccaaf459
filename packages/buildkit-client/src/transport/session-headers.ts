/** What a build session announces when it opens (both ways of opening one use these). */
export interface SessionHandshake {
  readonly id: string;
  readonly name: string;
  readonly sharedKey: string;
  /** gRPC paths we serve, e.g. `/moby.filesync.v1.FileSync/DiffCopy`. */
  readonly methods: readonly string[];
}

/** Header lines announcing a session. One line per method: a comma-joined list matches none. */
export function sessionHeaders(h: SessionHandshake): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['X-Docker-Expose-Session-Uuid', h.id],
    ['X-Docker-Expose-Session-Name', h.name],
    ['X-Docker-Expose-Session-Sharedkey', h.sharedKey],
  ];
  for (const m of h.methods) out.push(['X-Docker-Expose-Session-Grpc-Method', m]);
  return out;
}
