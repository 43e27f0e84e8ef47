// The shipped ops/ configuration, validated by the tools that will load it: promtool for the
// scrape config and the alert rules (and their unit tests), amtool for Alertmanager.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { opsTool } from '../harness/ops-tools.ts';

const OPS = fileURLToPath(new URL('../../ops/', import.meta.url));

function run(binary: string, args: string[]) {
  const result = spawnSync(binary, args, { cwd: OPS, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('ops/ configuration', () => {
  it('prometheus.yml is a valid config that loads the alert rules', (context) => {
    const result = run(opsTool(context, 'promtool'), ['check', 'config', 'prometheus/prometheus.yml']);
    expect(result.output).toContain('SUCCESS');
    expect(result.status, result.output).toBe(0);
  });

  it('compose/prometheus.yml (the ops profile of docker-compose.yml) is a valid config that loads the same alert rules', (context) => {
    const result = run(opsTool(context, 'promtool'), ['check', 'config', 'compose/prometheus.yml']);
    expect(result.output).toMatch(/SUCCESS: 12 rules found/);
    expect(result.status, result.output).toBe(0);
  });

  it('alerts.yml holds valid rules, one per alert the runbook documents', (context) => {
    const result = run(opsTool(context, 'promtool'), ['check', 'rules', 'prometheus/alerts.yml']);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toMatch(/SUCCESS: 12 rules found/);
  });

  it('every alert rule passes its promtool unit tests', (context) => {
    const result = run(opsTool(context, 'promtool'), ['test', 'rules', 'prometheus/tests/alerts.test.yml']);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });

  it('alertmanager.yml is valid and has the Discord and Slack receivers', (context) => {
    const result = run(opsTool(context, 'amtool'), ['check-config', 'alertmanager/alertmanager.yml']);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toMatch(/2 receivers/);
    expect(result.output).toMatch(/3 inhibit rules/);
  });

  it.for([
    { labels: ['severity=critical', 'alertname=StampedeRedisDown', 'service=stampede'], receivers: 'discord,slack' },
    { labels: ['severity=warning', 'alertname=StampedeJobFailed', 'service=stampede'], receivers: 'slack' },
  ])('routes $labels to $receivers', ({ labels, receivers }, context) => {
    const result = run(opsTool(context, 'amtool'), ['config', 'routes', 'test', '--config.file=alertmanager/alertmanager.yml', `--verify.receivers=${receivers}`, ...labels]);
    expect(result.status, result.output).toBe(0);
  });
});
