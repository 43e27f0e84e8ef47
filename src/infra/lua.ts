// Lua scripts live in `.lua` files beside the code that calls them. Each is sent once per
// connection lifetime: EVALSHA normally, EVAL (which also caches it) after a NOSCRIPT reply,
// e.g. when Redis restarted or SCRIPT FLUSH ran.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from './redis.ts';

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

export function loadLuaScript(url: URL): LuaScript {
  const source = readFileSync(url, 'utf8');
  return { name: url.pathname.split('/').pop()!, source, sha: createHash('sha1').update(source).digest('hex') };
}

export async function runLuaScript(redis: Redis, script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await redis.evalSha(script.sha, { keys, arguments: args });
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return redis.eval(script.source, { keys, arguments: args });
    }
    throw error;
  }
}
