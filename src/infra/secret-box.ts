// Sealing of secrets stored in PostgreSQL (a partner's SQL source URL): AES-256-GCM from
// node:crypto, a fresh 12-byte IV per seal, the 16-byte tag checked on open. `context` is bound as
// associated data (the owner's id), so a sealed value moved to another row does not open.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The configured secret (≥ 32 characters, any alphabet) as a 256-bit key. */
const aesKey = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/** iv || tag || ciphertext */
export function sealSecret(secret: string, plaintext: string, context: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', aesKey(secret), iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

/** Throws when the key, the context or the bytes are not the ones sealed. */
export function openSecret(secret: string, sealed: Buffer, context: string): string {
  const decipher = createDecipheriv('aes-256-gcm', aesKey(secret), sealed.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
}
