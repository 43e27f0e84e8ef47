// Resolves an X-API-Key to its partner without touching PostgreSQL in steady state:
//   in-process LRU (TTL `localTtlMs`) → Redis cache-aside (distributed mode) → PostgreSQL.
// Revocation writes a tombstone to Redis and drops the local entry, so every process sees it once
// its local entry expires: `localTtlMs` (default 500 ms) bounds how late that is. Without Redis
// there is one API process, which drops its own entry at once, so the local TTL can be long.
// A key in use is read again in the background once its entry is half that old, so a busy key's
// entry never lapses: every lapse sent each request of the next few event-loop turns down the slow
// path at once (Fastify's pipeline and a look-up each), a burst every 500 ms (decision 250).
// A look-up racing a revocation never brings the key back: the Redis write is refused over a
// tombstone (cache-key-1.lua), and a look-up that overlapped a revocation in this process resolves
// again instead of caching what it read (docs/decisions/040-auth-cache-races.md).
// Unknown keys are cached briefly in their own LRU (a flood of them cannot evict real keys), and
// each client address may cost only so many unknown-key look-ups per minute (429 beyond).
import { LRUCache } from 'lru-cache';
import { AppError } from '../errors.ts';
import type { Db } from '../infra/db.ts';
import { loadLuaScript, runLuaScript } from '../infra/lua.ts';
import type { Redis } from '../infra/redis.ts';
import { hashApiKey, looksLikeApiKey } from './api-key.ts';
import { findKeyPrincipal, keyHashesOfPartner } from './partner-repository.ts';

export interface Principal {
  readonly keyId: string;
  readonly partnerId: string;
  /** NULL: the service default. */
  readonly rateLimitPerSecond: number | null;
}

interface LocalEntry {
  /** null: the key exists and is revoked. */
  readonly principal: Principal | null;
  /** SHA-256 (hex) of the key, to find the entry again on invalidation. */
  readonly hashHex: string;
  /** performance.now() from which a use of the entry reads the key again in the background. */
  readonly refreshAt: number;
}

export interface KeyAuthenticatorOptions {
  /** Lifetime of a known key in this process; 0 disables the local cache. */
  readonly localTtlMs: number;
  /** Unknown-key look-ups (those that found no key) one client address may make per minute. */
  readonly unknownKeyLookupsPerMinute: number;
}

const CACHE_KEY = loadLuaScript(new URL('./cache-key-1.lua', import.meta.url));
const REDIS_TTL_SECONDS = 600;
// Longer than any cache entry lives, so no entry written before the revocation outlives it.
const TOMBSTONE_TTL_SECONDS = 3_600;
const REVOKED = 'revoked';
const LOCAL_MAX_ENTRIES = 10_000;
const UNKNOWN_MAX_ENTRIES = 10_000;
/** An unknown key asked again within this time costs nothing (keys are random: none appears later). */
const UNKNOWN_TTL_MS = 10_000;
const ADDRESS_MAX_ENTRIES = 10_000;
const ADDRESS_WINDOW_MS = 60_000;
/** How long this process remembers a revocation to re-check look-ups that overlapped it. */
const RECENT_INVALIDATION_MS = 60_000;

export class KeyAuthenticator {
  // Keyed by the presented key itself, so a cache hit costs one map lookup and no SHA-256 (about
  // 4% of server CPU on the claim path when it hashed on every request). The raw keys live only
  // in this process's memory, as they do in every request's headers.
  private readonly local: LRUCache<string, LocalEntry> | undefined;
  private readonly unknown = new LRUCache<string, true>({ max: UNKNOWN_MAX_ENTRIES, ttl: UNKNOWN_TTL_MS });
  /** Unknown-key look-ups per client address in the current window (fixed window per address). */
  private readonly misses = new LRUCache<string, { count: number }>({ max: ADDRESS_MAX_ENTRIES, ttl: ADDRESS_WINDOW_MS, noUpdateTTL: true });
  /** Key hash → the invalidation sequence number that last dropped it. */
  private readonly invalidated = new LRUCache<string, number>({ max: LOCAL_MAX_ENTRIES, ttl: RECENT_INVALIDATION_MS });
  private sequence = 0;
  /** Keys whose background read (refresh) is under way. */
  private readonly refreshing = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly redis: Redis | undefined,
    private readonly options: KeyAuthenticatorOptions,
  ) {
    if (options.localTtlMs > 0) this.local = new LRUCache({ max: LOCAL_MAX_ENTRIES, ttl: options.localTtlMs });
  }

  /**
   * The key's principal, or null for an unknown or revoked key. Throws API_KEY_LOOKUPS_LIMITED when
   * `clientAddress` has used up its unknown-key look-ups and this key is not cached.
   */
  async authenticate(apiKey: string, clientAddress: string): Promise<Principal | null> {
    const cached = this.cached(apiKey);
    if (cached !== undefined) return cached;
    if (!looksLikeApiKey(apiKey) || this.unknown.has(apiKey)) return null;
    const spent = this.misses.get(clientAddress);
    if (spent && spent.count >= this.options.unknownKeyLookupsPerMinute) {
      throw new AppError('API_KEY_LOOKUPS_LIMITED', undefined, { retryAfterSeconds: this.retryAfterSeconds(clientAddress) });
    }

    const hash = hashApiKey(apiKey);
    const hashHex = hash.toString('hex');
    for (;;) {
      const startedAt = this.sequence;
      const found = await this.lookupShared(hash, hashHex);
      // A revocation of this key ran while we read: what we read may predate it, so read again
      // (the tombstone is in Redis and the row revoked by now) rather than cache or accept it.
      if (this.invalidatedSince(hashHex, startedAt)) continue;
      if (found === undefined) {
        this.unknown.set(apiKey, true);
        if (spent) spent.count += 1;
        else this.misses.set(clientAddress, { count: 1 });
        return null;
      }
      this.keep(apiKey, found, hashHex);
      return found;
    }
  }

  /**
   * The key's principal as this process holds it (null: revoked), without waiting: undefined when
   * it is not held here (or its entry expired) and authenticate() must look it up.
   */
  cached(apiKey: string): Principal | null | undefined {
    const entry = this.local?.get(apiKey);
    if (entry && performance.now() >= entry.refreshAt) this.refresh(apiKey, entry.hashHex);
    return entry?.principal;
  }

  /** Reads a cached key again; the entry lapses as before if the read fails or the key is gone. */
  private refresh(apiKey: string, hashHex: string): void {
    if (this.refreshing.has(apiKey)) return;
    this.refreshing.add(apiKey);
    const startedAt = this.sequence;
    void this.lookupShared(Buffer.from(hashHex, 'hex'), hashHex).then((found) => {
      // Revoked in this process meanwhile: invalidate() dropped the entry; do not put it back.
      if (this.invalidatedSince(hashHex, startedAt)) return;
      if (found === undefined) this.local!.delete(apiKey);
      else this.keep(apiKey, found, hashHex);
    }, () => undefined).finally(() => this.refreshing.delete(apiKey));
  }

  /** Caches what a read found for localTtlMs (the LRU's TTL), to be read again at half of it. */
  private keep(apiKey: string, principal: Principal | null, hashHex: string): void {
    this.local?.set(apiKey, { principal, hashHex, refreshAt: performance.now() + this.options.localTtlMs / 2 });
  }

  private invalidatedSince(hashHex: string, sequence: number): boolean {
    return (this.invalidated.get(hashHex) ?? -1) >= sequence;
  }

  /** Called after a key was revoked (or its partner changed) in PostgreSQL. */
  async invalidate(hashes: Buffer[], revoked: boolean): Promise<void> {
    const ids = new Set(hashes.map((hash) => hash.toString('hex')));
    const sequence = this.sequence++;
    for (const id of ids) this.invalidated.set(id, sequence);
    if (this.local) for (const [apiKey, entry] of this.local.entries()) if (ids.has(entry.hashHex)) this.local.delete(apiKey);
    if (!this.redis) return;
    // Issued before any later look-up's GET on this one connection, so such a GET sees them.
    await Promise.all([...ids].map((id) => (revoked
      ? this.redis!.set(apiKeyCacheKey(id), REVOKED, { EX: TOMBSTONE_TTL_SECONDS })
      : this.redis!.del(apiKeyCacheKey(id)))));
  }

  async invalidatePartner(partnerId: string): Promise<void> {
    await this.invalidate(await keyHashesOfPartner(this.db, partnerId), false);
  }

  private retryAfterSeconds(clientAddress: string): number {
    return Math.max(1, Math.ceil(this.misses.getRemainingTTL(clientAddress) / 1000));
  }

  /** The principal, null for a revoked key, undefined for a key that does not exist. */
  private async lookupShared(hash: Buffer, id: string): Promise<Principal | null | undefined> {
    if (this.redis) {
      const hit = await this.redis.get(apiKeyCacheKey(id));
      if (hit === REVOKED) return null;
      if (hit) return JSON.parse(hit) as Principal;
    }
    const row = await findKeyPrincipal(this.db, hash);
    if (!row) return undefined; // not written to Redis: a flood of random keys must not fill it
    const principal = row.revoked ? null : { keyId: row.keyId, partnerId: row.partnerId, rateLimitPerSecond: row.rateLimitPerSecond };
    if (this.redis) {
      const written = await runLuaScript(this.redis, CACHE_KEY, [apiKeyCacheKey(id)], [principal ? JSON.stringify(principal) : REVOKED, String(REDIS_TTL_SECONDS)]);
      // Refused: revoked while we read PostgreSQL.
      if (written === 0) return null;
    }
    return principal;
  }
}

/** The Redis key of a key's cache entry or tombstone, by the key's SHA-256 (hex). */
export const apiKeyCacheKey = (hashHex: string) => `stampede:apikey:${hashHex}`;
