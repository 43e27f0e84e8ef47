// Lua scripts live in `.lua` files beside the code that calls them, named `opName-<numKeys>.lua`.
// The key count in the name is checked twice: at load, against the KEYS[i] the script names; at
// every call, against the keys given. Each is sent once per connection lifetime: EVALSHA
// normally, EVAL (which also caches it) after a NOSCRIPT reply, e.g. when Redis restarted or
// SCRIPT FLUSH ran.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from './redis.ts';

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
  /** How many KEYS every call passes: the `-N` of the file name. */
  readonly numKeys: number;
}

export function loadLuaScript(url: URL): LuaScript {
  const name = url.pathname.split('/').pop()!;
  const source = readFileSync(url, 'utf8');
  const numKeys = Number(/-(\d+)\.lua$/.exec(name)?.[1] ?? Number.NaN);
  if (!Number.isSafeInteger(numKeys)) throw new Error(`${name}: a Lua script is named opName-<numKeys>.lua`);
  const named = new Set([...source.matchAll(/KEYS\[(\d+)\]/g)].map((match) => Number(match[1])));
  const expected = Array.from({ length: numKeys }, (_, i) => i + 1);
  if (named.size !== numKeys || !expected.every((index) => named.has(index))) {
    throw new Error(`${name}: named for ${numKeys} keys, but names KEYS[${[...named].sort((a, b) => a - b).join('], KEYS[')}]`);
  }
  return { name, source, sha: createHash('sha1').update(source).digest('hex'), numKeys };
}

export async function runLuaScript(redis: Redis, script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
  if (keys.length !== script.numKeys) throw new Error(`${script.name} takes ${script.numKeys} keys, called with ${keys.length}`);
  try {
    return await redis.evalSha(script.sha, { keys, arguments: args });
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return redis.eval(script.source, { keys, arguments: args });
    }
    throw error;
  }
}
