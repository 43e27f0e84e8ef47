// Which errors of the backing services answer 503 (retry) rather than 500 (a bug).
import Fastify from 'fastify';
import { ErrorReply, SocketClosedUnexpectedlyError, ClientOfflineError } from 'redis';
import { describe, expect, it } from 'vitest';
import { installErrorHandling } from './error-handler.ts';

describe('error mapping', () => {
  it('answers 503 for Redis and PostgreSQL being unreachable or not ready, 500 for anything else', async () => {
    const app = Fastify();
    installErrorHandling(app);
    const cases: Record<string, () => Error> = {
      'socket-closed': () => new SocketClosedUnexpectedlyError(),
      offline: () => new ClientOfflineError(),
      loading: () => new ErrorReply('LOADING Redis is loading the dataset in memory'),
      refused: () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }),
      'pg-shutdown': () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      'script-error': () => new ErrorReply('ERR Error running script'),
      bug: () => new TypeError('x is undefined'),
    };
    for (const [name, make] of Object.entries(cases)) app.get(`/${name}`, async () => { throw make(); });
    const status = async (name: string) => (await app.inject({ url: `/${name}` })).statusCode;
    for (const name of ['socket-closed', 'offline', 'loading', 'refused', 'pg-shutdown']) expect(await status(name), name).toBe(503);
    for (const name of ['script-error', 'bug']) expect(await status(name), name).toBe(500);
    await app.close();
  });
});
