// API key material: 256 random bits, shown once; only a SHA-256 digest and a short prefix are kept.
import { createHash, randomBytes } from 'node:crypto';

const KEY_PREFIX = 'stp_';

export interface NewApiKey {
  /** The secret handed to the partner once. */
  readonly apiKey: string;
  readonly prefix: string;
  readonly hash: Buffer;
}

export function generateApiKey(): NewApiKey {
  const apiKey = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { apiKey, prefix: apiKey.slice(0, KEY_PREFIX.length + 8), hash: hashApiKey(apiKey) };
}

export const hashApiKey = (apiKey: string): Buffer => createHash('sha256').update(apiKey).digest();

/** Cheap shape check before any lookup: keys are `stp_` + 43 base64url characters. */
export const looksLikeApiKey = (value: string): boolean => /^stp_[A-Za-z0-9_-]{43}$/.test(value);
