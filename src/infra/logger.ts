import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config.ts';

export type { Logger };

// Credentials never reach a log line, whoever logs what: request headers that carry them, and any
// field named like one (a webhook's secret, a key being created). Webhook URLs are logged by
// their origin only (src/jobs/webhook-delivery.ts).
const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers["x-api-key"]', 'headers.authorization', 'headers["x-api-key"]',
  'apiKey', 'secret', 'adminToken', '*.apiKey', '*.secret', '*.adminToken',
];

/** Structured JSON logs on stdout (or `destination`); the HTTP layer adds a request id to each request's child. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
