// Reads a server-sent-events stream (GET /v1/coupon-templates/{id}/live): the key in a header,
// frames parsed as they arrive. node:http with one socket per stream and no agent, so closing a
// stream closes its socket (fetch's pool may keep a spare connection open, which holds
// app.close() until the keep-alive timeout).
import http from 'node:http';
export interface LiveFrame {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

export interface LiveStream {
  readonly status: number;
  /** The body of a refusal (status other than 200). */
  json(): Promise<unknown>;
  readonly headers: http.IncomingHttpHeaders;
  /** Frames received so far (comments excluded), oldest first. */
  readonly frames: LiveFrame[];
  /** Comment lines received so far (heartbeats). */
  readonly comments: string[];
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  /** Resolves with the first frame (already received or to come) that matches. */
  waitForFrame(match: (frame: LiveFrame) => boolean, timeoutMs?: number): Promise<LiveFrame>;
  close(): void;
}

export async function openLiveStream(baseUrl: string, templateId: string, apiKey: string): Promise<LiveStream> {
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = http.get(`${baseUrl}/v1/coupon-templates/${templateId}/live`, { agent: false, headers: { 'x-api-key': apiKey, accept: 'text/event-stream' } }, resolve);
    request.on('error', reject);
  });
  const frames: LiveFrame[] = [];
  const comments: string[] = [];
  const listeners = new Set<() => void>();
  const notify = () => { for (const listener of listeners) listener(); };
  let closedByUs = false;
  const ended = (async () => {
    if (response.statusCode !== 200) { response.resume(); return; }
    response.setEncoding('utf8');
    let buffer = '';
    try {
      for await (const chunk of response) {
        buffer += chunk as string;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (data) frames.push({ event, data: JSON.parse(data) as Record<string, unknown> });
          notify();
        }
      }
    } catch (error) {
      if (!closedByUs) throw error;
    } finally {
      notify();
    }
  })();
  let done = false;
  void ended.finally(() => { done = true; notify(); }).catch(() => undefined);
  return {
    status: response.statusCode ?? 0,
    headers: response.headers,
    json: async () => {
      let body = '';
      for await (const chunk of response) body += String(chunk);
      return JSON.parse(body) as unknown;
    },
    frames,
    comments,
    ended,
    close: () => {
      closedByUs = true;
      response.destroy();
    },
    waitForFrame: (match, timeoutMs = 30_000) => new Promise((resolve, reject) => {
      const check = () => {
        const found = frames.find(match);
        if (found) { cleanup(); resolve(found); } else if (done) { cleanup(); reject(new Error('the stream ended before a matching frame')); }
      };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`no matching frame within ${timeoutMs} ms; last: ${JSON.stringify(frames.at(-1))}`)); }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); listeners.delete(check); };
      listeners.add(check);
      check();
    }),
  };
}
