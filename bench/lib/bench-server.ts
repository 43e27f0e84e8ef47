// Process plumbing shared by the benchmark's own servers (baseline, bare route): a Fastify app
// without request logging, a liveness route the orchestrator polls, listening on loopback, and a
// clean exit on SIGTERM (so `node --cpu-prof` writes its profile).
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../../src/infra/logger.ts';

/** `logger`: where errors go (requests themselves are never logged); none: silent. */
export function benchApp(logger?: Logger): FastifyInstance {
  const app = logger ? Fastify({ loggerInstance: logger as FastifyBaseLogger, disableRequestLogging: true }) : Fastify({ logger: false });
  app.get('/health/live', async () => ({ status: 'ok' }));
  return app;
}

/**
 * Answers carry the request's X-Request-Id back, as the product does (app.ts): the wrk load
 * generator matches each answer to its request by it, to time every request.
 */
export function echoRequestId(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    const id = request.headers['x-request-id'];
    if (typeof id === 'string') void reply.header('x-request-id', id);
  });
}

export async function serveUntilSignalled(app: FastifyInstance, port: number, onClose?: () => Promise<void>): Promise<void> {
  await app.listen({ port, host: '127.0.0.1' });
  const stop = () => {
    void app.close()
      .then(() => onClose?.())
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
