// An HTTP receiver on 127.0.0.1 that records every webhook delivery it gets, for the tests of the
// webhook outbox. The app under test must allow private addresses (STAMPEDE_WEBHOOK_ALLOW_PRIVATE).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  readonly path: string;
  /** The X-Stampede-Event header. */
  readonly event: string | undefined;
  readonly body: Record<string, unknown>;
  /** The body as sent, which the signature covers. */
  readonly raw: string;
  /** The Stampede-Signature header. */
  readonly signature: string | undefined;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>`: a webhook's URL is this plus a path. */
  readonly base: string;
  /** Every delivery so far, in arrival order. */
  readonly received: ReceivedWebhook[];
  close(): Promise<void>;
}

/** Starts a receiver; `statusOf` chooses the answer to a delivery by its path (200 by default). */
export async function startWebhookReceiver(statusOf: (path: string) => number = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const server = http.createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => { text += chunk.toString(); });
    request.on('end', () => {
      received.push({
        path: request.url ?? '', event: request.headers['x-stampede-event'] as string | undefined, body: JSON.parse(text),
        raw: text, signature: request.headers['stampede-signature'] as string | undefined,
      });
      response.writeHead(statusOf(request.url ?? '')).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
