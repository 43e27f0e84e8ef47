// The `-N` of a Lua script's name is its key count: checked at load against the KEYS it names,
// and on every call against the keys given, before Redis is reached.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadLuaScript, runLuaScript } from './lua.ts';
import type { Redis } from './redis.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'stampede-lua-'));
const script = (name: string, source: string): URL => {
  writeFileSync(path.join(dir, name), source);
  return pathToFileURL(path.join(dir, name));
};
/** Never reached: the key count is checked first. */
const NO_REDIS = undefined as unknown as Redis;

describe('Lua scripts', () => {
  it('loads every script of the code base, each naming exactly the keys its name counts', () => {
    const src = path.resolve(import.meta.dirname, '..');
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.lua'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(loadLuaScript(pathToFileURL(path.join(src, file))).numKeys).toBeGreaterThan(0);
  });

  it('refuses at load a script whose name does not count its keys', () => {
    expect(() => loadLuaScript(script('three-2.lua', 'return {KEYS[1], KEYS[2], KEYS[3]}'))).toThrow(/three-2.lua: named for 2 keys/);
    expect(() => loadLuaScript(script('gap-2.lua', 'return {KEYS[1], KEYS[3]}'))).toThrow(/gap-2.lua: named for 2 keys/);
    expect(() => loadLuaScript(script('nameless.lua', 'return KEYS[1]'))).toThrow(/opName-<numKeys>.lua/);
  });

  it('refuses a call with another number of keys before it reaches Redis', async () => {
    const one = loadLuaScript(script('one-1.lua', 'return KEYS[1]'));
    await expect(runLuaScript(NO_REDIS, one, ['a', 'b'], [])).rejects.toThrow('one-1.lua takes 1 keys, called with 2');
    await expect(runLuaScript(NO_REDIS, one, [], [])).rejects.toThrow('one-1.lua takes 1 keys, called with 0');
  });
});
