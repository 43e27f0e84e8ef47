// The HTTP ceilings: the claim route's URL answered with a constant coupon of the same shape and
// size as a real 201 — no auth, no Redis, no PostgreSQL. Whatever the product loses against this
// is the cost of its own work. Two routes:
//   - minimal (the ceiling): no body schema, no validation, a pre-serialised constant answer;
//   - validating (a second reference): the product's params and body schemas checked by Fastify
//     with the product's validator compiler (src/http/validator-compiler.ts).
// With BARE_PROCESSES > 1 it runs as a node:cluster primary that forks that many workers and
// serves nothing itself, like `stampede serve` with STAMPEDE_PROCESSES (same default scheduling),
// so the product is compared with a bare route at its own process count.
// Env: PORT, BARE_ROUTE (minimal | validating), BARE_PROCESSES (default 1).
import cluster from 'node:cluster';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdParams, UserId } from '../../src/http/schemas.ts';
import { validatorCompiler } from '../../src/http/validator-compiler.ts';
import { benchApp, echoRequestId, serveUntilSignalled } from '../lib/bench-server.ts';

const CONSTANT_COUPON = {
  couponId: '019aaaaa-0000-7000-8000-000000000000',
  templateId: '019aaaaa-0000-7000-8000-000000000001',
  userId: 'bench-user-000000',
  status: 'ISSUED',
  validFrom: '2026-11-22T00:00:00.000Z',
  validUntil: '2026-12-22T00:00:00.000Z',
};
const CONSTANT_BODY = JSON.stringify(CONSTANT_COUPON);

const route = process.env.BARE_ROUTE ?? 'minimal';
if (route !== 'minimal' && route !== 'validating') throw new Error(`BARE_ROUTE: minimal or validating, not "${route}"`);
const processes = Number(process.env.BARE_PROCESSES ?? 1);
if (!Number.isInteger(processes) || processes < 1) throw new Error('BARE_PROCESSES must be a positive integer');

if (processes > 1 && cluster.isPrimary) {
  // Workers inherit execArgv (tsx's loader, --cpu-prof), as the product's forks do.
  const workers = Array.from({ length: processes }, () => cluster.fork());
  const stop = () => { for (const worker of workers) worker.process.kill('SIGTERM'); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  let exited = 0;
  cluster.on('exit', () => { if (++exited === workers.length) process.exit(0); });
} else {
  const app = benchApp();
  if (route === 'minimal') {
    // Anything posted is read by Fastify's default JSON parser and answered with the constant
    // (and the X-Request-Id the load generator times requests by, as every server here echoes it).
    app.post('/v1/coupon-templates/:id/claims', (request, reply) => {
      const id = request.headers['x-request-id'];
      if (typeof id === 'string') void reply.header('x-request-id', id);
      void reply.code(201).header('content-type', 'application/json; charset=utf-8').send(CONSTANT_BODY);
    });
  } else {
    echoRequestId(app);
    const typed = app.withTypeProvider<TypeBoxTypeProvider>();
    typed.setValidatorCompiler(validatorCompiler);
    typed.post('/v1/coupon-templates/:id/claims', {
      schema: { params: IdParams, body: Type.Object({ userId: UserId }, { additionalProperties: false }) },
    }, async (_request, reply) => reply.code(201).send(CONSTANT_COUPON));
  }
  await serveUntilSignalled(app, Number(process.env.PORT));
}
