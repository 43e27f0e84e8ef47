// Redis key names of the claim path. Every key of one template shares the hash tag {tpl:<id>}, so
// claim-4.lua touches a single Redis Cluster slot. The two index sets are read outside scripts.
export interface TemplateClaimKeys {
  readonly state: string;
  readonly users: string;
  readonly claims: string;
  readonly stream: string;
  /** In claim-4.lua's KEYS order. */
  readonly claimScriptKeys: string[];
}

export function templateClaimKeys(templateId: string): TemplateClaimKeys {
  const tag = `stampede:{tpl:${templateId}}`;
  const keys = { state: `${tag}:state`, users: `${tag}:users`, claims: `${tag}:claims`, stream: `${tag}:stream` };
  return { ...keys, claimScriptKeys: [keys.state, keys.users, keys.claims, keys.stream] };
}

/** Templates whose claim stream the persister reads. */
export const ACTIVE_TEMPLATES_KEY = 'stampede:claims:active-templates';

/** A partner's templates with claim state in Redis: where read-your-writes looks for a coupon id. */
export const partnerActiveTemplatesKey = (partnerId: string): string => `stampede:claims:partner:${partnerId}:active-templates`;

/** The consumer group every claim persister joins. */
export const PERSISTER_GROUP = 'persisters';
