// The process around the app: listening, workers, signals and graceful shutdown
// (stop accepting → drain in-flight requests → stop workers after they flush → close pools).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import type { Config } from './config.ts';
import { opsRoutes, type OpsOptions } from './http/ops-routes.ts';
import type { Logger } from './infra/logger.ts';
import { firstStartBanner, openRuntime, resolveAdminToken, type Runtime } from './runtime.ts';
import { startWorkers } from './workers.ts';

export interface RunningServer {
  readonly app: FastifyInstance | undefined;
  readonly runtime: Runtime;
  close(): Promise<void>;
}

export interface StartOptions extends OpsOptions {
  /** A cluster fork: the primary has already applied migrations and checked Redis. */
  readonly preparedByPrimary?: boolean;
}

export async function startServer(config: Config, logger: Logger, roles: { api: boolean; workers: boolean }, options: StartOptions = {}): Promise<RunningServer> {
  const prepare = !options.preparedByPrimary;
  const runtime = await openRuntime(config, logger, { checkRedisDurability: prepare, runMigrations: prepare });
  let app: FastifyInstance | undefined;
  let stopWorkers: (() => Promise<void>) | undefined;
  try {
    if (roles.workers) stopWorkers = await startWorkers(runtime.ctx);
    if (roles.api) {
      const admin = await resolveAdminToken(config, logger);
      app = await buildApp(runtime.ctx, {
        adminToken: admin.token,
        logRequests: config.logLevel === 'debug' || config.logLevel === 'trace',
        ...(options.metricsText ? { metricsText: options.metricsText } : {}),
      });
      await app.listen({ port: config.port, host: config.host });
      if (admin.created) process.stderr.write(firstStartBanner(listeningUrl(app), admin.file!));
    } else if (config.metricsPort !== undefined && !options.preparedByPrimary) {
      // A workers-only process (`stampede worker`) is scraped too: jobs and persistence live here.
      // (A cluster's workers fork is not: the primary aggregates it into the API processes' /metrics.)
      app = Fastify({ loggerInstance: runtime.ctx.logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
      await app.register(opsRoutes(runtime.ctx));
      await app.listen({ port: config.metricsPort, host: config.host });
    }
  } catch (error) {
    await app?.close();
    await stopWorkers?.();
    await runtime.close();
    throw error;
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await app?.close();
      await stopWorkers?.();
      await runtime.close();
    })();
    return closing;
  };
  return { app, runtime, close };
}

function listeningUrl(app: FastifyInstance): string {
  const address = app.server.address();
  if (address === null || typeof address === 'string') return String(address);
  const host = address.address === '0.0.0.0' || address.address === '::' ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * Closes on SIGTERM/SIGINT; a second signal or the timeout forces the exit. A bug that escapes
 * everything (an unhandled rejection, an uncaught exception) is logged and closes the process the
 * same way, draining what is in flight, then exits 1 so a supervisor (or the cluster primary)
 * starts a fresh one: the process state after such a bug is not to be trusted for long.
 */
/**
 * closeOnSignals, installed before the server starts: a SIGTERM that arrives while it starts (just
 * after "Server listening", say) drains it once started instead of killing the process outright.
 */
export async function startClosingOnSignals<T extends { close(): Promise<void> }>(starting: Promise<T>, logger: Logger, timeoutMs: number): Promise<T> {
  closeOnSignals({ close: async () => (await starting).close() }, logger, timeoutMs);
  return starting;
}

export function closeOnSignals(server: { close(): Promise<void> }, logger: Logger, timeoutMs: number): void {
  let exitCode: number | undefined;
  const shutDown = (code: number) => {
    exitCode = code;
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'graceful shutdown timed out');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    server.close().then(
      () => {
        if (exitCode !== 0) logger.fatal({ exitCode }, 'drained after a crash; exiting');
        process.exit(exitCode);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (exitCode !== undefined) process.exit(1);
    logger.info({ signal }, 'shutting down');
    shutDown(0);
  };
  const onCrash = (origin: 'unhandledRejection' | 'uncaughtException') => (error: unknown) => {
    logger.fatal({ err: error, origin }, `${origin}: a bug escaped its handler; draining and exiting 1`);
    if (exitCode === undefined) shutDown(1);
    else exitCode = 1; // a crash while draining: the drain goes on, bounded by its timeout
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', onCrash('unhandledRejection'));
  process.on('uncaughtException', onCrash('uncaughtException'));
}
