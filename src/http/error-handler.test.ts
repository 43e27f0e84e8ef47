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

describe('HTTP parser refusals', () => {
  it('answers a request whose headers do not arrive in time with 408 REQUEST_TIMEOUT in the catalog shape', async () => {
    const { createServer } = await import('node:http');
    const net = await import('node:net');
    const { clientErrorHandler } = await import('./error-handler.ts');
    // Node checks request deadlines every connectionsCheckingInterval; both are short here.
    const app = Fastify({
      serverFactory: (handler) => createServer({ requestTimeout: 300, headersTimeout: 200, connectionsCheckingInterval: 50 }, handler),
      clientErrorHandler,
    });
    app.get('/', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as import('node:net').AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        let data = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => { data += chunk; });
        socket.on('error', reject);
        socket.on('close', () => resolve(data));
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
        error: { code: 'REQUEST_TIMEOUT', message: 'The request did not arrive in time.' },
      });
    } finally {
      await app.close();
    }
  });
});
