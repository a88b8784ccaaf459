/**
 * SSH agent forwarding (`RUN --mount=type=ssh[,id=ID]`), the session's moby.sshforward.v1.SSH
 * service. The daemon first asks CheckAgent whether an id is served, then, for every connection a
 * RUN step makes to the socket it mounts, opens a ForwardAgent stream whose `buildkit.ssh.id`
 * header names the agent (empty: `default`). We relay the bytes to the agent's unix socket.
 *
 * Like buildx, the build gets a read-only view of the agent: it may list keys and ask for
 * signatures, nothing else (no adding, removing, locking, extensions). Agent requests are framed
 * (uint32 length, type byte), so each request is checked before it is passed on, and a refused
 * one is answered with SSH_AGENT_FAILURE in its turn, after the answers still owed before it.
 */
import * as net from 'node:net';
import { BytesMessage, CheckAgentRequest } from '../gen/moby/sshforward/v1/ssh';
import { GRPC_NOT_FOUND, GrpcStatusError, type Handler } from './grpc-server';

export const SSH_CHECK_AGENT = '/moby.sshforward.v1.SSH/CheckAgent';
export const SSH_FORWARD_AGENT = '/moby.sshforward.v1.SSH/ForwardAgent';
/** The request header naming the agent of a ForwardAgent stream (buildkit session/sshforward). */
export const SSH_ID_HEADER = 'buildkit.ssh.id';
export const DEFAULT_SSH_ID = 'default';

const GRPC_UNAVAILABLE = 14;
const REQUEST_IDENTITIES = 11;
const SIGN_REQUEST = 13;
const AGENT_FAILURE = Buffer.from([0, 0, 0, 1, 5]);
/** OpenSSH's own limit on one agent message. */
const MAX_AGENT_MESSAGE = 256 * 1024;

function unknownAgent(id: string, agents: ReadonlyMap<string, string>): GrpcStatusError {
  const given = [...agents.keys()].join(', ') || 'none';
  return new GrpcStatusError(
    GRPC_NOT_FOUND,
    `the build asked for ssh agent "${id}", which this client does not forward (forwarded: ${given}); forward it with --ssh ${id}=SOCKET`,
  );
}

/** Splits a byte stream into whole agent messages (4-byte length + body). */
class Framer {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Uint8Array): Buffer[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len === 0 || len > MAX_AGENT_MESSAGE)
        throw new Error(`bad ssh agent message length ${len}`);
      if (this.buf.length < 4 + len) break;
      out.push(this.buf.subarray(0, 4 + len));
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}

function connectUnix(path: string, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ path });
    const fail = (e: Error) => {
      sock.destroy();
      reject(e);
    };
    sock.once('error', fail);
    sock.once('connect', () => {
      sock.off('error', fail);
      resolve(sock);
    });
    signal.addEventListener('abort', () => fail(new Error('call cancelled')), { once: true });
  });
}

async function forward(
  call: Parameters<Handler>[0],
  id: string,
  socketPath: string,
): Promise<void> {
  let agent: net.Socket;
  try {
    agent = await connectUnix(socketPath, call.signal);
  } catch (e) {
    throw new GrpcStatusError(
      GRPC_UNAVAILABLE,
      `cannot connect to ssh agent "${id}" at ${socketPath}: ${(e as Error).message}; check that the agent is running (ssh-add -l)`,
    );
  }
  // Answers owed to the build, in request order: the agent's next reply, or a refusal.
  const owed: ('agent' | 'refused')[] = [];
  let sending: Promise<void> = Promise.resolve();
  const toBuild = (bytes: Buffer) => {
    const data = new Uint8Array(bytes);
    sending = sending.then(() => call.send(BytesMessage.encode({ data }).finish()));
    sending.catch(() => agent.destroy());
  };
  const flushRefusals = () => {
    while (owed[0] === 'refused') {
      owed.shift();
      toBuild(AGENT_FAILURE);
    }
  };
  const fromAgent = new Framer();
  const agentDone = new Promise<void>((resolve, reject) => {
    agent.on('data', (chunk: Buffer) => {
      try {
        for (const reply of fromAgent.push(chunk)) {
          if (owed.shift() !== 'agent') throw new Error('ssh agent sent a reply nobody asked for');
          toBuild(reply);
          flushRefusals();
        }
      } catch (e) {
        agent.destroy();
        reject(e);
      }
    });
    agent.once('end', () => resolve());
    agent.once('close', () => resolve());
    agent.once('error', (e) =>
      reject(new Error(`ssh agent "${id}" at ${socketPath}: ${e.message}`)),
    );
  });
  agentDone.catch(() => {});
  const fromBuild = new Framer();
  const buildDone = (async () => {
    for await (const raw of call.messages()) {
      for (const req of fromBuild.push(BytesMessage.decode(raw).data)) {
        const type = req[4];
        if (type === REQUEST_IDENTITIES || type === SIGN_REQUEST) {
          owed.push('agent');
          if (!agent.write(req))
            await Promise.race([new Promise((r) => agent.once('drain', r)), agentDone]);
        } else {
          owed.push('refused');
          flushRefusals();
        }
      }
    }
    agent.end(); // the RUN step closed its side; the agent may still answer
  })();
  buildDone.catch(() => agent.destroy());
  try {
    // Done when the agent hangs up (after the build closed its side, or on its own).
    await Promise.race([agentDone, buildDone.then(() => agentDone)]);
    await sending;
  } finally {
    agent.destroy();
  }
}

/** Handlers serving `agents` (id → agent socket path). */
export function sshForwardHandlers(
  agents: ReadonlyMap<string, string>,
): [method: string, handler: Handler][] {
  return [
    [
      SSH_CHECK_AGENT,
      async (call) => {
        let id = '';
        for await (const raw of call.messages()) id = CheckAgentRequest.decode(raw).ID;
        id ||= DEFAULT_SSH_ID;
        if (!agents.has(id)) throw unknownAgent(id, agents);
        await call.send(new Uint8Array(0));
      },
    ],
    [
      SSH_FORWARD_AGENT,
      async (call) => {
        const id = call.metadata(SSH_ID_HEADER)[0] || DEFAULT_SSH_ID;
        const path = agents.get(id);
        if (path === undefined) throw unknownAgent(id, agents);
        await forward(call, id, path);
      },
    ],
  ];
}
