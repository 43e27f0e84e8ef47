// Every metric the Grafana dashboard and the alert rules query must be one the service really
// exports: a renamed metric would otherwise leave an empty panel and an alert that never fires.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createSupervisorMetrics } from '../../src/cluster.ts';
import { createPartner, createTestApp, templateBody, type TestApp } from '../harness/test-app.ts';

const read = (file: string) => readFileSync(new URL(`../../ops/${file}`, import.meta.url), 'utf8');
const METRIC_NAME = /\bstampede_[a-z0-9_]+/g;

/** Every PromQL string in a Grafana dashboard: panel targets and templating queries. */
function dashboardQueries(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(dashboardQueries);
  if (typeof node !== 'object' || node === null) return [];
  return Object.entries(node).flatMap(([key, value]) =>
    (key === 'expr' || key === 'definition') && typeof value === 'string' ? [value] : dashboardQueries(value));
}

function alertQueries(): string[] {
  const rules = parse(read('prometheus/alerts.yml')) as { groups: Array<{ rules: Array<{ expr: string }> }> };
  return rules.groups.flatMap((group) => group.rules.map((rule) => rule.expr));
}

/** Metric names in Prometheus text format, with the series names a histogram adds. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

describe('metric names used by ops/', () => {
  let t: TestApp;
  let exported: Set<string>;
  beforeAll(async () => {
    t = await createTestApp({ distributed: true });
    // Exercise the app so labelled series exist, not only their declarations.
    const partner = await createPartner(t.app);
    const created = await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody() });
    expect(created.statusCode).toBe(201);
    await t.app.inject({ url: `/v1/coupon-templates/${created.json().id}`, headers: partner.headers });
    const scraped = (await t.app.inject({ url: '/metrics' })).body;
    expect(scraped).toMatch(/stampede_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/coupon-templates\/:id"/);
    expect(scraped).toMatch(/stampede_dependency_up\{dependency="redis"\} 1/);
    exported = new Set([...exportedNames(scraped), ...exportedNames(await createSupervisorMetrics().registry.metrics())]);
  });
  afterAll(async () => { await t.close(); });

  it('finds the queries it checks', () => {
    expect(dashboardQueries(JSON.parse(read('grafana/dashboards/stampede.json'))).length).toBeGreaterThan(20);
    expect(alertQueries().length).toBe(12);
  });

  it.each([
    ['the Grafana dashboard', () => dashboardQueries(JSON.parse(read('grafana/dashboards/stampede.json')))],
    ['the alert rules', alertQueries],
  ])('%s uses only exported metric names', (_what, queries) => {
    const used = new Set(queries().flatMap((query) => query.match(METRIC_NAME) ?? []));
    expect(used.size).toBeGreaterThan(3);
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });
});
