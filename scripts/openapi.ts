// Writes openapi.json: the document the app serves at /docs/json, generated from the routes.
// `npm run openapi` after changing a route; src/http/openapi.test.ts fails while they differ.
import { writeFileSync } from 'node:fs';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createContext } from '../src/runtime.ts';
import { createPool } from '../src/infra/db.ts';
import { createLogger } from '../src/infra/logger.ts';
import { createMetrics } from '../src/infra/metrics.ts';

// Nothing connects: the pools are lazy and the document needs no query.
const config = loadConfig({ DATABASE_URL: 'postgres://openapi@127.0.0.1:9/unused', STAMPEDE_ADMIN_TOKEN: 'unused-unused-unused', LOG_LEVEL: 'silent' });
const logger = createLogger(config.logLevel);
const db = createPool(config.databaseUrl!, 1, logger);
const ledgerDb = createPool(config.databaseUrl!, 1, logger);
const ctx = createContext({ config, logger, db, ledgerDb, authDb: db, workerDb: db, redis: undefined, metrics: createMetrics() });
const app = await buildApp(ctx, { adminToken: 'unused-unused-unused' });
await app.ready();
const target = new URL('../openapi.json', import.meta.url);
writeFileSync(target, `${JSON.stringify(app.swagger(), null, 2)}\n`);
await app.close();
await Promise.all([db.end(), ledgerDb.end()]);
console.log(`wrote ${target.pathname}`);
