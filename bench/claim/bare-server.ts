// The HTTP ceiling: the claim route's URL and JSON body, parsed and validated by Fastify, answered
// with a constant coupon of the same shape and size as a real 201 — no auth, no Redis, no
// PostgreSQL. Whatever the product loses against this is the cost of its own work.
// Env: PORT.
import { Type } from 'typebox';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdParams, UserId } from '../../src/http/schemas.ts';
import { benchApp, serveUntilSignalled } from '../lib/bench-server.ts';

const CONSTANT_COUPON = {
  couponId: '019aaaaa-0000-7000-8000-000000000000',
  templateId: '019aaaaa-0000-7000-8000-000000000001',
  userId: 'bench-user-000000',
  status: 'ISSUED',
  validFrom: '2026-11-22T00:00:00.000Z',
  validUntil: '2026-12-22T00:00:00.000Z',
};

const app = benchApp().withTypeProvider<TypeBoxTypeProvider>();
app.setValidatorCompiler(TypeBoxValidatorCompiler);
app.post('/v1/coupon-templates/:id/claims', {
  schema: { params: IdParams, body: Type.Object({ userId: UserId }, { additionalProperties: false }) },
}, async (_request, reply) => reply.code(201).send(CONSTANT_COUPON));

await serveUntilSignalled(app, Number(process.env.PORT));
