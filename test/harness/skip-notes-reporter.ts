// Lists, after vitest's own summary, every test skipped with a reason (`context.skip(note)`), so a
// skipped test is never only a count: e.g. the ops/ tests when promtool or amtool is missing.
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export default class SkipNotesReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    for (const module of testModules) {
      for (const testCase of module.children.allTests('skipped')) {
        const { note } = testCase.result() as { note?: string };
        if (note) lines.push(`  ${path.relative(process.cwd(), module.moduleId)} > ${testCase.fullName}: ${note}`);
      }
    }
    if (lines.length === 0) return;
    process.stdout.write(`\n Skipped with a reason (${lines.length}):\n${lines.join('\n')}\n\n`);
  }
}
