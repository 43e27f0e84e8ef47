// A minimal HTTP/1.1 keep-alive client for load generation: one request in flight per socket (no
// pipelining, as real clients send), requests pre-serialised into buffers, responses parsed just
// enough to get the status and the body. It spends far less CPU per request than node:http, which
// matters when the load generator shares two cores with the server it measures.
import net from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly body: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CONNECTION_CLOSE = /\r\nconnection:[ \t]*close/i;

export class KeepAliveConnection {
  private socket: net.Socket | undefined;
  private received: Buffer = Buffer.alloc(0);
  private inFlight: { resolve: (response: RawResponse) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | undefined;

  constructor(private readonly host: string, private readonly port: number, private readonly timeoutMs: number) {}

  /** Opens the socket now, so connection set-up is not counted in the first request's latency. */
  async connect(): Promise<void> {
    if (this.socket && !this.socket.destroyed) return;
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    socket.removeAllListeners('error');
    // Events of a socket already replaced (closed after `connection: close`) must not touch the next one.
    socket.on('data', (chunk: Buffer) => { if (this.socket === socket) this.onData(chunk); });
    socket.on('error', (error) => { if (this.socket === socket) this.fail(error); });
    socket.on('close', () => { if (this.socket === socket) this.fail(new Error('connection closed by the server')); });
    this.socket = socket;
    this.received = Buffer.alloc(0);
  }

  /** Sends one complete, pre-serialised request and resolves with its response. */
  async request(raw: Buffer): Promise<RawResponse> {
    if (this.inFlight) throw new Error('one request at a time per connection (no pipelining)');
    await this.connect();
    return new Promise<RawResponse>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no response within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.inFlight = { resolve, reject, timer };
      this.socket!.write(raw);
    });
  }

  close(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }

  private onData(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    const headerEnd = this.received.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = this.received.toString('latin1', 0, headerEnd);
    const length = CONTENT_LENGTH.exec(head);
    if (!length) {
      this.fail(new Error(`response without content-length: ${head.slice(0, 200)}`));
      return;
    }
    const bodyStart = headerEnd + HEADER_END.length;
    const bodyEnd = bodyStart + Number(length[1]);
    if (this.received.length < bodyEnd) return;
    if (this.received.length > bodyEnd) {
      this.fail(new Error('bytes after the response: the server answered something that was not asked'));
      return;
    }
    const response = { status: Number(head.slice(9, 12)), body: this.received.toString('utf8', bodyStart, bodyEnd) };
    this.received = Buffer.alloc(0);
    // The server announced it will close: open a fresh socket for the next request.
    if (CONNECTION_CLOSE.test(head)) this.close();
    const pending = this.inFlight;
    this.inFlight = undefined;
    if (pending) {
      clearTimeout(pending.timer);
      pending.resolve(response);
    }
  }

  private fail(error: Error): void {
    const pending = this.inFlight;
    this.inFlight = undefined;
    this.close();
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }
}

/** Serialises a JSON POST once, so the hot loop only writes bytes. */
export function jsonPost(host: string, port: number, path: string, headers: Record<string, string>, body: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(body));
  const lines = [
    `POST ${path} HTTP/1.1`,
    `host: ${host}:${port}`,
    'content-type: application/json',
    `content-length: ${payload.length}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), payload]);
}

/** Opens `count` connections a batch at a time, so the server's listen backlog never overflows. */
export async function openConnections(host: string, port: number, count: number, timeoutMs: number): Promise<KeepAliveConnection[]> {
  const connections: KeepAliveConnection[] = [];
  for (let i = 0; i < count; i += 64) {
    const batch = Array.from({ length: Math.min(64, count - i) }, () => new KeepAliveConnection(host, port, timeoutMs));
    await Promise.all(batch.map((connection) => connection.connect()));
    connections.push(...batch);
  }
  return connections;
}
