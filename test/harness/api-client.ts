// The typed client (clients/typescript) for tests against a started server, with the template
// draft of test-app.ts typed as the contract's body.
import { createStampedeClient, type operations } from '../../clients/typescript/src/index.ts';
import { templateBody } from './test-app.ts';

export { createStampedeClient };

export type TemplateDraft = operations['createCouponTemplate']['requestBody']['content']['application/json'];

/** templateBody() as the contract types it. */
export const templateDraft = (overrides: Partial<TemplateDraft> = {}): TemplateDraft => templateBody(overrides) as TemplateDraft;

/** The answer's body, or an error naming the status and the refusal. */
export function expectData<T>(answer: { data?: T; error?: unknown; response: Response }): T {
  if (answer.data === undefined) throw new Error(`${answer.response.url}: ${answer.response.status} ${JSON.stringify(answer.error)}`);
  return answer.data;
}
