// The closed loop shared by the HTTP load generators: `connections` keep-alive sockets take
// planned requests from one queue in plan order (so neighbours in the plan are in flight at once),
// each socket sending its next request when the previous answer arrives.
import { performance } from 'node:perf_hooks';
import { openConnections, type KeepAliveConnection } from './keepalive-client.ts';

/** The HTTP status (0: no answer), the body (or the error) and the latency of one request. */
export type Sent = [status: number, body: string, latencyMs: number];

export async function timedRequest(connection: KeepAliveConnection, raw: Buffer): Promise<Sent> {
  const sentAt = performance.now();
  const response = await connection.request(raw).catch((error: Error) => error);
  const latencyMs = performance.now() - sentAt;
  return response instanceof Error ? [0, response.message, latencyMs] : [response.status, response.body, latencyMs];
}

export interface ClosedLoopTarget {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly timeoutMs: number;
}

/** Runs `handle(connection, i)` for i in 0..count-1 over the sockets; returns wall time and this process's CPU. */
export async function runClosedLoop(
  target: ClosedLoopTarget,
  count: number,
  handle: (connection: KeepAliveConnection, index: number) => Promise<void>,
): Promise<{ durationMs: number; cpuSeconds: number }> {
  const connections = await openConnections(target.host, target.port, target.connections, target.timeoutMs);
  let next = 0;
  const lane = async (connection: KeepAliveConnection) => {
    for (let i = next++; i < count; i = next++) await handle(connection, i);
  };
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  await Promise.all(connections.map(lane));
  const durationMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  for (const connection of connections) connection.close();
  return { durationMs, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}
