// The servers the claim benchmark compares, each started as its own process against the
// benchmark's PostgreSQL (and Redis), and how each gets a partner and a fresh coupon event.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { createStampedeClient } from '../../clients/typescript/src/index.ts';
import { insertTemplate } from '../../src/coupons/template-repository.ts';
import type { TemplateDraft } from '../../src/coupons/template-rules.ts';
import { STAMPEDE_COMMAND } from '../../test/harness/spawn-stampede.ts';
import { freePort } from '../../src/infra/free-port.ts';
import { insertPartner } from '../../src/partners/partner-repository.ts';
import { startServerProcess, type ServerProcess } from '../lib/server-process.ts';
import type { BenchServices } from '../lib/services.ts';

/** `bare`: the minimal bare route (the ceiling); `bare-validating`: the same with the product's schemas checked. */
export type ServerKind = 'bare' | 'bare-validating' | 'baseline' | 'embedded' | 'distributed';

/** Kinds that answer every claim with a constant 201 and write nothing. */
export const isBare = (kind: ServerKind): boolean => kind === 'bare' || kind === 'bare-validating';

export interface ServerSetting {
  readonly kind: ServerKind;
  /** STAMPEDE_PROCESSES for the product, BARE_PROCESSES for the bare routes; 1 otherwise. */
  readonly processes: number;
  /** Write a V8 CPU profile of the server into this directory. */
  readonly cpuProfileDir?: string;
  /** The product only: settings added last (another Redis topology, STAMPEDE_WORKERS=off, …). */
  readonly env?: Record<string, string>;
}

/** A running server under test, ready to open coupon events. */
export interface RunningServer {
  readonly process: ServerProcess;
  /** Headers every claim carries (the product's X-API-Key). */
  readonly headers: Record<string, string>;
  /** A new event of `totalQuantity` coupons, one per user, open now; returns its id. */
  openEvent(totalQuantity: number): Promise<string>;
  /** Pids whose process tree is this server (the cluster primary and its workers). */
  readonly pids: readonly number[];
  /** Stops the process and removes what it was given on disk. */
  stop(): Promise<void>;
}

const ADMIN_TOKEN = `bench-admin-${randomUUID()}`;

export function eventDraft(totalQuantity: number): TemplateDraft {
  const now = Date.now();
  return {
    name: `bench claim ${totalQuantity}`,
    discount: { type: 'PERCENT', value: 10, maxAmount: 5_000 },
    minOrderAmount: 10_000,
    totalQuantity,
    perUserLimit: 1,
    claimStartsAt: new Date(now - 60_000).toISOString(),
    claimEndsAt: new Date(now + 4 * 3_600_000).toISOString(),
    validity: { type: 'ABSOLUTE', validFrom: new Date(now - 60_000).toISOString(), validUntil: new Date(now + 30 * 86_400_000).toISOString() },
  };
}

export function settingLabel(setting: ServerSetting): string {
  switch (setting.kind) {
    case 'bare': return `bare route, minimal (${setting.processes} proc)`;
    case 'bare-validating': return `bare route, validating (${setting.processes} proc)`;
    case 'baseline': return 'baseline (FOR UPDATE)';
    case 'embedded': return 'embedded (group commit)';
    case 'distributed': return `distributed (Redis, ${setting.processes} proc)`;
  }
}

export async function startServer(setting: ServerSetting, services: BenchServices): Promise<RunningServer> {
  const port = await freePort();
  const profile = setting.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', setting.cpuProfileDir] : [];
  const label = settingLabel(setting);
  if (isBare(setting.kind) || setting.kind === 'baseline') {
    const script = fileURLToPath(new URL(`./${isBare(setting.kind) ? 'bare' : 'baseline'}-server.ts`, import.meta.url));
    // The product's Node flags (heap and young generation, pretenuring; package.json's start script), so the
    // reference servers differ from the product only in their code.
    const server = await startServerProcess(label, [...profile, ...STAMPEDE_COMMAND.slice(0, -1), '--import', 'tsx', script], port, {
      DATABASE_URL: services.databaseUrl,
      LOG_LEVEL: 'warn',
      ...(isBare(setting.kind) ? { BARE_ROUTE: setting.kind === 'bare' ? 'minimal' : 'validating', BARE_PROCESSES: String(setting.processes) } : {}),
    });
    const partnerId = setting.kind === 'baseline' ? (await insertPartner(services.db, { id: uuidv7(), name: 'bench baseline', rateLimitPerSecond: null })).id : '';
    return {
      process: server,
      headers: {},
      pids: [server.pid],
      stop: () => server.stop(),
      openEvent: async (totalQuantity) =>
        setting.kind !== 'baseline' ? uuidv7() : (await insertTemplate(services.db, uuidv7(), partnerId, eventDraft(totalQuantity))).id,
    };
  }

  // Unused with DATABASE_URL set, but never the developer's ./.stampede.
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-bench-data-'));
  const server = await startServerProcess(label, [...profile, ...STAMPEDE_COMMAND, 'serve'], port, {
    DATABASE_URL: services.databaseUrl,
    ...(setting.kind === 'distributed' ? { REDIS_URL: services.redis.url } : {}),
    STAMPEDE_DATA_DIR: dataDir,
    STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN,
    STAMPEDE_PROCESSES: String(setting.processes),
    // The benchmark measures claims, not the per-key limiter's refusals: far above any rate here.
    STAMPEDE_RATE_LIMIT_PER_SECOND: '10000000',
    // Claim settings given to the benchmark (e.g. STAMPEDE_CLAIM_COMMITS_IN_FLIGHT=1) reach the product.
    ...Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[0].startsWith('STAMPEDE_CLAIM_') && entry[1] !== undefined)),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // BENCH_SERVER_NODE_OPTIONS (e.g. --perf-basic-prof for `perf record`) reaches the product only.
    ...(process.env.BENCH_SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVER_NODE_OPTIONS } : {}),
    ...setting.env,
  }).catch(async (error: unknown) => {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  const stop = async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const base = `http://127.0.0.1:${port}`;
    // Through the typed client (clients/typescript), so the contract cannot drift from what the benchmark calls.
    const partner = await created(createStampedeClient({ baseUrl: base, adminToken: ADMIN_TOKEN }).POST('/v1/partners', { body: { name: `bench ${label}` } }));
    const api = createStampedeClient({ baseUrl: base, apiKey: partner.apiKey });
    const headers = { 'x-api-key': partner.apiKey };
    return {
      process: server,
      headers,
      pids: [server.pid],
      stop,
      openEvent: async (totalQuantity) => (await created(api.POST('/v1/coupon-templates', { body: eventDraft(totalQuantity) }))).id,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function created<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (data === undefined) throw new Error(`${response.url} answered ${response.status}: ${JSON.stringify(error)}`);
  return data;
}
