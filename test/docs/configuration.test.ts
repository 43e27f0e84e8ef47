// docs/configuration.md's table, .env.example and what src/config.ts reads are one list: a setting
// added to config.ts fails this test until it has a line in both, and the defaults written in
// .env.example must be the ones config.ts applies.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

/** Every environment variable loadConfig reads, found by letting it read an empty environment. */
function namesReadByConfig(): string[] {
  const names = new Set<string>();
  loadConfig(new Proxy({}, { get: (_target, name) => { if (typeof name === 'string') names.add(name); return undefined; } }));
  return [...names].sort();
}

function envExample(): Record<string, string> {
  const entries = read('.env.example').split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = line.match(/^([A-Z][A-Z0-9_]*)=(.*)$/);
      if (!match) throw new Error(`.env.example: not a NAME=value line: ${line}`);
      return [match[1]!, match[2]!.replace(/^'(.*)'$/, '$1')] as const;
    });
  return Object.fromEntries(entries);
}

/** Rows of the "Server settings" table: name and default cell. */
function tableRows(): Array<{ name: string; defaultCell: string }> {
  const doc = read('docs/configuration.md');
  const section = doc.slice(doc.indexOf('## Server settings'), doc.indexOf('\n## ', doc.indexOf('## Server settings') + 1));
  return section.split('\n').filter((line) => line.startsWith('| `')).map((line) => {
    const [name, defaultCell] = line.split('|').slice(1, 3).map((cell) => cell.trim());
    return { name: name!.replace(/`/g, ''), defaultCell: defaultCell! };
  });
}

describe('configuration documentation', () => {
  it('lists exactly the settings config.ts reads, in .env.example and in the table', () => {
    const names = namesReadByConfig();
    expect(names.length).toBeGreaterThan(20);
    expect(Object.keys(envExample()).sort()).toEqual(names);
    expect(tableRows().map((row) => row.name).sort()).toEqual(names);
  });

  it('.env.example holds the defaults: loading it configures exactly what an empty environment does', () => {
    expect(loadConfig(envExample())).toEqual(loadConfig({}));
  });

  it('a default the table writes as one literal is the one in .env.example', () => {
    const example = envExample();
    const literal = tableRows().filter((row) => /^`[^`]*`$/.test(row.defaultCell));
    expect(literal.length).toBeGreaterThan(15);
    for (const row of literal) expect({ [row.name]: example[row.name] }).toEqual({ [row.name]: row.defaultCell.slice(1, -1) });
  });
});
