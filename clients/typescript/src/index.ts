// A typed Stampede client: openapi-fetch over the types openapi-typescript generates from
// openapi.json (schema.ts). Every path, parameter, body and answer is typed from the contract.
import createClient, { type ClientOptions } from 'openapi-fetch';
import type { paths } from './schema.ts';

export type { components, operations, paths } from './schema.ts';

export interface StampedeClientOptions {
  /** For example http://127.0.0.1:3000 */
  readonly baseUrl: string;
  /** A partner API key, sent as X-API-Key on every call. */
  readonly apiKey?: string;
  /** The admin bearer token (STAMPEDE_ADMIN_TOKEN), for partner and key management. */
  readonly adminToken?: string;
  /** Another fetch (defaults to the global one). */
  readonly fetch?: ClientOptions['fetch'];
}

export function createStampedeClient(options: StampedeClientOptions) {
  return createClient<paths>({
    baseUrl: options.baseUrl,
    headers: {
      ...(options.apiKey === undefined ? {} : { 'x-api-key': options.apiKey }),
      ...(options.adminToken === undefined ? {} : { authorization: `Bearer ${options.adminToken}` }),
    },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

export type StampedeClient = ReturnType<typeof createStampedeClient>;
