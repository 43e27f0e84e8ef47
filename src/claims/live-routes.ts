// GET /v1/coupon-templates/{id}/live: the live view of one claim event as server-sent events
// (docs/console.md). The frames come from the shared per-event measurement of live-feed.ts; this
// route only checks tenancy and the viewer bounds, then hands the socket to the feed.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { findTemplate } from '../coupons/template-repository.ts';
import { AppError } from '../errors.ts';
import { ErrorResponse, IdParams } from '../http/schemas.ts';
import type { LiveFeed, LiveViewer } from './live-feed.ts';

/** A viewer that reads slower than frames come (about 1 KB a second) is cut off past this. */
const MAX_BUFFERED_BYTES = 256 * 1024;

export function liveRoutes(ctx: AppContext, feed: LiveFeed): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/v1/coupon-templates/:id/live', {
      schema: {
        operationId: 'watchCouponTemplate', tags: ['claims'],
        summary: 'Watch a claim event live: server-sent events, one `stats` frame a second',
        description: 'Each `stats` event carries remaining stock, claims per second by outcome, p99 claim latency, persisted count and persister lag, and the status. Comment lines are heartbeats. Bounded per partner and per process (429 `LIVE_VIEWERS_LIMIT_REACHED`, 503 `LIVE_VIEWERS_BUSY`).',
        params: IdParams,
        response: {
          200: { description: 'A stream of `stats` events (text/event-stream).', content: { 'text/event-stream': { schema: Type.String() } } },
          404: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse,
        },
      },
    }, async (request, reply) => {
      const { partnerId } = request.principal;
      const template = await findTemplate(ctx.db, partnerId, request.params.id);
      if (!template) throw new AppError('TEMPLATE_NOT_FOUND');
      const raw = reply.raw;
      const viewer: LiveViewer = {
        send(frame) {
          if (raw.destroyed || raw.writableEnded) return;
          if (raw.writableLength > MAX_BUFFERED_BYTES) {
            raw.destroy();
            return;
          }
          raw.write(frame);
        },
        close() {
          if (!raw.writableEnded) raw.end();
        },
      };
      // Refuses (429/503) before anything is written; from here on the socket is the feed's.
      const { leave, lastFrame } = feed.join(partnerId, template.id, viewer);
      reply.hijack();
      // A client that goes away half-closes the socket; ours would stay open (and hold app.close())
      // until the idle timeout without the destroy.
      raw.on('close', () => {
        leave();
        raw.destroy();
      });
      // The client may have gone while the template was read: 'close' will not come again.
      if (request.raw.socket.destroyed) {
        leave();
        return;
      }
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      });
      raw.write(`retry: 3000\n: ${template.id}\n\n`);
      if (lastFrame) raw.write(lastFrame);
    });
  };
}
