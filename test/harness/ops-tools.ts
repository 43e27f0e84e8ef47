// The Prometheus and Alertmanager binaries the ops tests run (Debian packages `prometheus` and
// `prometheus-alertmanager`; Debian names the Alertmanager binary `prometheus-alertmanager`).
// Missing binaries skip those tests with a loud message on a developer machine; .ci/run installs
// them and sets STAMPEDE_REQUIRE_OPS_TOOLS=1, so in CI a missing binary fails the run.
import { spawnSync } from 'node:child_process';

export type OpsTool = 'promtool' | 'amtool' | 'prometheus' | 'alertmanager';

const CANDIDATES: Record<OpsTool, string[]> = {
  promtool: ['promtool'],
  amtool: ['amtool'],
  prometheus: ['prometheus'],
  alertmanager: ['alertmanager', 'prometheus-alertmanager'],
};

export function findOpsTool(tool: OpsTool): string | undefined {
  return CANDIDATES[tool].find((binary) => {
    const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    return !probe.error && probe.status === 0;
  });
}

/** The binaries, or undefined (after a loud warning) when one is missing outside CI. */
export function opsToolsOrSkip(tools: OpsTool[]): Record<OpsTool, string> | undefined {
  const found: Partial<Record<OpsTool, string>> = {};
  const missing: OpsTool[] = [];
  for (const tool of tools) {
    const binary = findOpsTool(tool);
    if (binary) found[tool] = binary;
    else missing.push(tool);
  }
  if (missing.length === 0) return found as Record<OpsTool, string>;
  const message =
    `\n\n  !!! ${missing.join(', ')} not found on PATH: the ops/ tests (Prometheus rules, Alertmanager\n` +
    '  !!! config, alert delivery) are NOT being run. Install them: apt-get install -y prometheus\n' +
    '  !!! prometheus-alertmanager   (.ci/run does this)\n\n';
  if (process.env.STAMPEDE_REQUIRE_OPS_TOOLS === '1') throw new Error(message);
  console.error(message);
  return undefined;
}
