// Users' holdings read from PostgreSQL on their first claim, batched like the group commit: the
// first look-up goes at once; those asked while `concurrency` queries are running gather and go
// together, one query per event (`user_id = ANY(…)` on the unique (template_id, user_id, seq)
// index). A stampede at an event's opening thus costs a few queries, not one per user, and never
// more than `concurrency` connections. The queue is bounded: beyond it, 503 at once.
import { AppError } from '../errors.ts';

export interface HoldingsLookupOptions {
  readonly maxBatch: number;
  readonly concurrency: number;
  readonly maxQueued: number;
}

export const HOLDINGS_LOOKUP_DEFAULTS: HoldingsLookupOptions = { maxBatch: 1_000, concurrency: 2, maxQueued: 20_000 };

interface Request<T> {
  readonly templateId: string;
  readonly userId: string;
  readonly resolve: (value: T | undefined) => void;
  readonly reject: (error: unknown) => void;
}

export class HoldingsLookup<T> {
  private queue: Request<T>[] = [];
  private running = 0;

  constructor(
    /** One query for many users of one event; users holding nothing may be absent from the map. */
    private readonly fetch: (templateId: string, userIds: string[]) => Promise<Map<string, T>>,
    private readonly options: HoldingsLookupOptions = HOLDINGS_LOOKUP_DEFAULTS,
  ) {}

  /** The user's holdings of the event (undefined: none). Callers de-duplicate their own requests. */
  get(templateId: string, userId: string): Promise<T | undefined> {
    if (this.queue.length >= this.options.maxQueued) {
      return Promise.reject(new AppError('SERVICE_UNAVAILABLE', 'Too many claims are waiting for their holdings to be read; retry shortly.'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ templateId, userId, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.running += 1;
      void this.run(batch).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  private async run(batch: Request<T>[]): Promise<void> {
    const byEvent = new Map<string, Request<T>[]>();
    for (const request of batch) {
      const group = byEvent.get(request.templateId);
      if (group) group.push(request);
      else byEvent.set(request.templateId, [request]);
    }
    await Promise.all([...byEvent].map(async ([templateId, requests]) => {
      try {
        const found = await this.fetch(templateId, [...new Set(requests.map((request) => request.userId))]);
        for (const request of requests) request.resolve(found.get(request.userId));
      } catch (error) {
        for (const request of requests) request.reject(error);
      }
    }));
  }
}
