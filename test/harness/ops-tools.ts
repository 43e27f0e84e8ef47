// The Prometheus and Alertmanager binaries the ops tests run (Debian packages `prometheus` and
// `prometheus-alertmanager`; Debian names the Alertmanager binary `prometheus-alertmanager`).
// A missing binary skips the tests that need it, with a note naming it in vitest's report, on a
// developer machine; .ci/run installs them and sets STAMPEDE_REQUIRE_OPS_TOOLS=1, so in CI a
// missing binary fails the run.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'vitest';

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

const INSTALL = 'apt-get install -y prometheus prometheus-alertmanager (.ci/run does this)';

/**
 * Why tests needing `tools` cannot run here, or undefined when every one is on PATH. Under
 * STAMPEDE_REQUIRE_OPS_TOOLS=1 (.ci/run) a missing binary throws instead: in CI they must run.
 */
export function missingOpsTools(tools: OpsTool[]): string | undefined {
  const missing = tools.filter((tool) => !findOpsTool(tool));
  if (missing.length === 0) return undefined;
  const note = `${missing.join(', ')} not on PATH: install with ${INSTALL}`;
  if (process.env.STAMPEDE_REQUIRE_OPS_TOOLS === '1') throw new Error(`STAMPEDE_REQUIRE_OPS_TOOLS=1 but ${note}`);
  return note;
}

/** The binary of `tool` for this test, or the test is skipped with a note the summary shows. */
export function opsTool(context: TestContext, tool: OpsTool): string {
  const note = missingOpsTools([tool]);
  if (note !== undefined) context.skip(note);
  return findOpsTool(tool)!;
}
