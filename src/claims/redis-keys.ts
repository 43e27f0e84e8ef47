// Redis key names of the claim path. Every key of one template shares the hash tag {tpl:<id>}, so
// the claim script touches a single Redis Cluster slot (and fails over with its event). The index
// sets are read and written outside scripts, each command on its own slot.
import type { Redis } from '../infra/redis.ts';
export interface TemplateClaimKeys {
  readonly state: string;
  readonly users: string;
  readonly claims: string;
  readonly stream: string;
  /** hash: Idempotency-Key -> the first outcome of a claim sent with it (claim-5.lua). */
  readonly idempotency: string;
  /** In claim-5.lua's KEYS order. */
  readonly claimScriptKeys: string[];
}

export function templateClaimKeys(templateId: string): TemplateClaimKeys {
  const tag = `stampede:{tpl:${templateId}}`;
  const keys = { state: `${tag}:state`, users: `${tag}:users`, claims: `${tag}:claims`, stream: `${tag}:stream`, idempotency: `${tag}:idem` };
  return { ...keys, claimScriptKeys: [keys.state, keys.users, keys.claims, keys.stream, keys.idempotency] };
}

/** A key of the event's slot written (and expired at once) only to move a connection's replication offset (claim-replication-fence.ts). */
export const replicationFenceKey = (templateId: string): string => `stampede:{tpl:${templateId}}:fence`;

/**
 * Templates whose claim stream the persister reads, spread over a fixed set of sets with their own
 * hash tags: in a Redis Cluster no single node holds (and serves) the index of every event, and a
 * reader visits them all.
 */
export const ACTIVE_TEMPLATE_BUCKETS = 16;
export const activeTemplatesKeyOf = (templateId: string): string => `stampede:{active:${bucketOf(templateId)}}:templates`;
export const ALL_ACTIVE_TEMPLATES_KEYS: readonly string[] = Array.from({ length: ACTIVE_TEMPLATE_BUCKETS }, (_, n) => `stampede:{active:${n}}:templates`);
/** The one set of releases before the buckets: still read (and emptied) so an upgrade loses no event. */
export const LEGACY_ACTIVE_TEMPLATES_KEY = 'stampede:claims:active-templates';

function bucketOf(templateId: string): number {
  let sum = 0;
  for (let i = 0; i < templateId.length; i += 1) sum = (sum * 31 + templateId.charCodeAt(i)) >>> 0;
  return sum % ACTIVE_TEMPLATE_BUCKETS;
}

/** Every active template id (one SMEMBERS per bucket, sent at once). */
export async function activeTemplateIds(redis: Redis): Promise<string[]> {
  const sets = await Promise.all([...ALL_ACTIVE_TEMPLATES_KEYS, LEGACY_ACTIVE_TEMPLATES_KEY].map((key) => redis.sMembers(key)));
  return [...new Set(sets.flat())];
}

/** Takes a template out of the index (its bucket and the legacy set). */
export async function deactivateTemplate(redis: Redis, templateId: string): Promise<void> {
  await Promise.all([redis.sRem(activeTemplatesKeyOf(templateId), templateId), redis.sRem(LEGACY_ACTIVE_TEMPLATES_KEY, templateId)]);
}

/** A partner's templates with claim state in Redis: where read-your-writes looks for a coupon id. */
export const partnerActiveTemplatesKey = (partnerId: string): string => `stampede:claims:partner:${partnerId}:active-templates`;

/** The consumer group every claim persister joins. */
export const PERSISTER_GROUP = 'persisters';
