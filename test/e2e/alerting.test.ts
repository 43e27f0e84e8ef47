// End to end alerting: a real Prometheus scrapes a running Stampede with the shipped alert rules
// (their `for:` shortened to 1 s, thresholds as shipped) and a real Alertmanager with the shipped
// routing delivers to a local HTTP receiver standing in for Discord and Slack. Two real causes:
// claims waiting with the persister paused (consumer lag, a warning: Slack only), then Redis going
// away (critical: Discord's webhook shape checked, and Slack), and its resolution.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { freePort } from '../../src/infra/free-port.ts';
import { findOpsTool, missingOpsTools } from '../harness/ops-tools.ts';
import { startRedisServer, type RedisServerHandle } from '../harness/redis-server.ts';
import { spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { ADMIN_TOKEN, templateBody } from '../harness/test-app.ts';
import { waitFor } from '../harness/wait-for.ts';

const OPS = new URL('../../ops/', import.meta.url);
const missingTools = missingOpsTools(['prometheus', 'alertmanager']);

interface Delivery {
  readonly path: string;
  readonly body: Record<string, unknown>;
}
interface DiscordPayload {
  embeds: Array<{ title: string; description: string; color: number }>;
}

/** A local webhook endpoint that records every JSON POST. */
async function startReceiver() {
  const deliveries: Delivery[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
    request.on('end', () => {
      deliveries.push({ path: request.url ?? '', body: JSON.parse(body) as Record<string, unknown> });
      response.writeHead(204).end();
      for (const waiter of waiters) waiter();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    waitFor(predicate: (delivery: Delivery) => boolean, timeoutMs: number): Promise<Delivery> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = deliveries.find(predicate);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching delivery within ${timeoutMs} ms; got ${JSON.stringify(deliveries)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Starts a binary and collects its output (shown when a wait fails). */
function startDaemon(binary: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => { text += chunk.toString('utf8'); });
  child.stderr!.on('data', (chunk: Buffer) => { text += chunk.toString('utf8'); });
  return { child, output: () => text };
}

/** `waitFor`, an error counting as "not yet" (a server still starting), failing with `context()` appended. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, context: () => string) {
  return waitFor(probe, { what, timeoutMs, intervalMs: 250, tolerateErrors: true })
    .catch((error: Error) => { throw new Error(`${error.message}\n${context()}`); });
}

/** The shipped rules with every `for:` cut to 1 s, so the test does not wait half a minute. */
async function fastRules(): Promise<string> {
  const rules = parse(await readFile(new URL('prometheus/alerts.yml', OPS), 'utf8')) as { groups: Array<{ rules: Array<{ for?: string }> }> };
  for (const group of rules.groups) for (const rule of group.rules) if (rule.for) rule.for = '1s';
  return stringify(rules);
}

/** The shipped Alertmanager routing with short waits, webhooks pointed at the local receiver. */
async function localAlertmanagerConfig(receiverUrl: string): Promise<string> {
  const config = parse(await readFile(new URL('alertmanager/alertmanager.yml', OPS), 'utf8')) as {
    route: { group_wait: string; group_interval: string; routes: Array<{ group_wait?: string; group_interval?: string }> };
    receivers: Array<{ name: string; discord_configs?: Array<Record<string, unknown>>; slack_configs?: Array<Record<string, unknown>> }>;
  };
  for (const route of [config.route, ...config.route.routes]) {
    route.group_wait = '1s';
    route.group_interval = '1s';
  }
  for (const receiver of config.receivers) {
    for (const discord of receiver.discord_configs ?? []) discord.webhook_url = `${receiverUrl}/discord`;
    for (const slack of receiver.slack_configs ?? []) {
      delete slack.api_url_file;
      slack.api_url = `${receiverUrl}/slack`;
    }
  }
  return stringify(config);
}

describe('alerting end to end', () => {
  // Each test is reported skipped with the note naming what to install (CI requires them instead).
  beforeEach((context) => { if (missingTools) context.skip(missingTools); });
  const cleanups: Array<() => Promise<unknown>> = [];
  let redis: RedisServerHandle;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let stampedeUrl: string;
  let query: (promql: string) => Promise<number | undefined>;
  let context: () => string;

  // Stampede in distributed mode with its workers off: the claim persister is "paused".
  beforeAll(async () => {
    if (missingTools) return;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stampede-alerting-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    receiver = await startReceiver();
    cleanups.push(() => receiver.close());

    const stampedePort = await freePort();
    stampedeUrl = `http://127.0.0.1:${stampedePort}`;
    const stampede: StampedeProcess = spawnStampede(['serve'], {
      DATABASE_URL: inject('databaseUrl'), REDIS_URL: redis.url, PORT: String(stampedePort), HOST: '127.0.0.1',
      STAMPEDE_WORKERS: 'off', STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    cleanups.push(async () => { stampede.child.kill('SIGTERM'); await stampede.exited; });
    await stampede.waitForOutput(/Server listening/, 90_000);

    const alertmanagerPort = await freePort();
    await writeFile(path.join(dir, 'alertmanager.yml'), await localAlertmanagerConfig(receiver.url));
    const alertmanager = startDaemon(findOpsTool('alertmanager')!, [
      `--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${alertmanagerPort}`, '--cluster.listen-address=',
    ]);
    cleanups.push(async () => { alertmanager.child.kill('SIGTERM'); await once(alertmanager.child, 'exit'); });

    const prometheusPort = await freePort();
    await writeFile(path.join(dir, 'alerts.yml'), await fastRules());
    await writeFile(path.join(dir, 'prometheus.yml'), stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: ['alerts.yml'],
      alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${alertmanagerPort}`] }] }] },
      scrape_configs: [{ job_name: 'stampede', static_configs: [{ targets: [`127.0.0.1:${stampedePort}`] }] }],
    }));
    const prometheus = startDaemon(findOpsTool('prometheus')!, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'prom-data')}`,
      `--web.listen-address=127.0.0.1:${prometheusPort}`,
    ]);
    cleanups.push(async () => { prometheus.child.kill('SIGTERM'); await once(prometheus.child, 'exit'); });
    context = () => `--- prometheus\n${prometheus.output().slice(-3000)}\n--- alertmanager\n${alertmanager.output().slice(-3000)}`;
    query = async (promql) => {
      const response = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = await response.json() as { data: { result: Array<{ value: [number, string] }> } };
      const value = body.data.result[0]?.value[1];
      return value === undefined ? undefined : Number(value);
    };
    // Prometheus scrapes Stampede and sees Redis up.
    await eventually('Prometheus to see Redis up', async () => (await query('stampede_dependency_up{dependency="redis"}')) === 1 ? true : undefined, 60_000, context);
  }, 180_000);
  afterAll(async () => { for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined); });

  const isAbout = (delivery: Delivery, where: string, status: string, alert: string) =>
    delivery.path === where && JSON.stringify(delivery.body).includes(`[${status}`) && JSON.stringify(delivery.body).includes(alert);

  it('claims wait with no persister: StampedeClaimConsumerLagHigh (a warning) reaches Slack, not Discord', async () => {
    const json = { 'content-type': 'application/json' };
    const partner = await (await fetch(`${stampedeUrl}/v1/partners`, {
      method: 'POST', headers: { ...json, authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ name: 'alerting' }),
    })).json() as { apiKey: string };
    const template = await (await fetch(`${stampedeUrl}/v1/coupon-templates`, {
      method: 'POST', headers: { ...json, 'x-api-key': partner.apiKey }, body: JSON.stringify(templateBody()),
    })).json() as { id: string };
    for (const userId of ['lag-1', 'lag-2', 'lag-3']) {
      const claim = await fetch(`${stampedeUrl}/v1/coupon-templates/${template.id}/claims`, {
        method: 'POST', headers: { ...json, 'x-api-key': partner.apiKey }, body: JSON.stringify({ userId }),
      });
      expect(claim.status).toBe(201);
    }
    expect(await eventually('the backlog in Prometheus', async () => query(`stampede_claim_stream_length{template="${template.id}"} == 3`), 30_000, context)).toBe(3);

    // The shipped threshold is 30 s of lag.
    const slack = await receiver.waitFor((delivery) => isAbout(delivery, '/slack', 'FIRING', 'StampedeClaimConsumerLagHigh'), 90_000);
    expect(JSON.stringify(slack.body)).toContain(`Claims of template ${template.id} are`);
    expect(receiver.deliveries.some((delivery) => isAbout(delivery, '/discord', 'FIRING', 'StampedeClaimConsumerLagHigh'))).toBe(false);
  }, 150_000);

  it('Redis goes away: StampedeRedisDown reaches the Discord and Slack webhooks, then resolves', async () => {
    await redis.kill();
    const firing = await receiver.waitFor((delivery) => isAbout(delivery, '/discord', 'FIRING', 'StampedeRedisDown'), 60_000);
    const discord = firing.body as unknown as DiscordPayload;
    expect(discord.embeds).toHaveLength(1);
    expect(discord.embeds[0]!.title).toMatch(/^\[FIRING:1\] StampedeRedisDown/);
    expect(discord.embeds[0]!.description).toContain('Stampede cannot reach Redis');
    expect(discord.embeds[0]!.description).toContain('ops/README.md#stampederedisdown');
    expect(discord.embeds[0]!.color).toBe(0x992d22);
    // Critical alerts also go to Slack (the route continues).
    const slack = await receiver.waitFor((delivery) => isAbout(delivery, '/slack', 'FIRING', 'StampedeRedisDown'), 30_000);
    expect(JSON.stringify(slack.body)).toContain('[FIRING:1] StampedeRedisDown');
    // The Redis client's connection errors are counted.
    expect(await query('stampede_redis_errors_total')).toBeGreaterThan(0);

    await redis.restart();
    const resolved = await receiver.waitFor((delivery) => isAbout(delivery, '/discord', 'RESOLVED', 'StampedeRedisDown'), 60_000);
    expect((resolved.body as unknown as DiscordPayload).embeds[0]!.title).toMatch(/^\[RESOLVED\] StampedeRedisDown/);
    expect((resolved.body as unknown as DiscordPayload).embeds[0]!.color).toBe(0x2ecc71);
  }, 150_000);
});
