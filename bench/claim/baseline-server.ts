// The baseline server: the claim endpoint as the usual first design builds it (baseline-claim.ts),
// with the product's configuration loader, pool settings and error mapping, so the only
// difference the benchmark measures is the claim strategy. No API-key check: that only flatters
// the baseline. Env: PORT, DATABASE_URL, STAMPEDE_DB_POOL_SIZE (default 20, as the product).
import { Type } from 'typebox';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { loadConfig } from '../../src/config.ts';
import { createPool } from '../../src/infra/db.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { installErrorHandling } from '../../src/http/error-handler.ts';
import { IdParams, UserId } from '../../src/http/schemas.ts';
import { benchApp, echoRequestId, serveUntilSignalled } from '../lib/bench-server.ts';
import { claimWithRowLock } from './baseline-claim.ts';

const config = loadConfig();
if (!config.databaseUrl) throw new Error('the baseline server needs DATABASE_URL');
const logger = createLogger(config.logLevel);
const db = createPool(config.databaseUrl, config.dbPoolSize, logger);

const app = benchApp(logger).withTypeProvider<TypeBoxTypeProvider>();
app.setValidatorCompiler(TypeBoxValidatorCompiler);
installErrorHandling(app);
echoRequestId(app);
app.post('/v1/coupon-templates/:id/claims', {
  schema: { params: IdParams, body: Type.Object({ userId: UserId }, { additionalProperties: false }) },
}, async (request, reply) => reply.code(201).send(await claimWithRowLock(db, request.params.id, request.body.userId)));

await serveUntilSignalled(app, config.port, () => db.end());
