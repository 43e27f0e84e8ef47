// `stampede <command>`: serve (API + workers), worker (workers only), migrate.
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './infra/logger.ts';
import { openRuntime } from './runtime.ts';
import { serve } from './cluster.ts';
import { closeOnSignals, startServer } from './server.ts';
import { runReconcileCommand } from './claims/reconcile.ts';

const USAGE = `usage: stampede <command>

  serve      run the HTTP API, and the workers unless STAMPEDE_WORKERS=off (npm start)
  worker     run the workers only (claim persistence, jobs, schedules)
  migrate    apply pending database migrations and exit
  reconcile <templateId>
             compare a template's claim state in Redis with PostgreSQL; exits 1 on drift
`;

export async function main(argv: string[]): Promise<void> {
  const [command] = argv;
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);

  try {
    switch (command) {
      case 'serve':
        await serve(config, logger);
        return;
      case 'worker': {
        const server = await startServer(config, logger, { api: false, workers: true });
        closeOnSignals(server, logger, config.shutdownTimeoutMs);
        return;
      }
      case 'migrate': {
        const runtime = await openRuntime(config, logger, { checkRedisDurability: false, runMigrations: true });
        await runtime.close();
        return;
      }
      case 'reconcile': {
        const runtime = await openRuntime(config, logger, { checkRedisDurability: false, runMigrations: false });
        const code = await runReconcileCommand(runtime.ctx, argv[1], process.stdout).finally(() => runtime.close());
        return process.exit(code);
      }
      default:
        process.stderr.write(USAGE);
        process.exit(command === undefined || command === 'help' || command === '--help' ? 0 : 2);
    }
  } catch (error) {
    logger.fatal({ err: error }, `stampede ${command} failed to start`);
    process.exit(1);
  }
}
