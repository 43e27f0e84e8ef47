// Each request's logger (request.log, reply.log), made on its first line. Fastify makes a pino
// child per request, carrying the request id; pino serialises the child's bindings through the
// redaction on creation, which cost ~2 % of the claim path's CPU (decision 210) for requests that
// nearly all log nothing. The child is made, with the same bindings and options, the first time
// the request logs or asks for a child: every line it writes is the one pino would have written.
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'fastify/types/logger.js';

type LogArgs = Parameters<FastifyBaseLogger['info']>;

class LazyRequestLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private get real(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.#child?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  fatal(...args: LogArgs): void { this.real.fatal(...args); }
  error(...args: LogArgs): void { this.real.error(...args); }
  warn(...args: LogArgs): void { this.real.warn(...args); }
  info(...args: LogArgs): void { this.real.info(...args); }
  debug(...args: LogArgs): void { this.real.debug(...args); }
  trace(...args: LogArgs): void { this.real.trace(...args); }
  silent(...args: LogArgs): void { this.real.silent(...args); }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, options);
  }
}

/** Fastify's `childLoggerFactory` option. */
export function lazyRequestLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyRequestLogger(logger, bindings, options);
}
