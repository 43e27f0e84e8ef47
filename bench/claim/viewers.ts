// Console viewers for the claim benchmark: N open live streams (GET /v1/coupon-templates/{id}/live)
// on the event under load, each on its own socket, counting the `stats` frames they receive.
import http from 'node:http';

export interface Viewers {
  /** Closes every stream; resolves with how many frames the least and the most served viewer got. */
  close(): { viewers: number; framesMin: number; framesMax: number };
}

export async function openViewers(port: number, templateId: string, headers: Record<string, string>, count: number): Promise<Viewers> {
  const frames = new Array<number>(count).fill(0);
  const responses = await Promise.all(Array.from({ length: count }, (_, i) => new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: `/v1/coupon-templates/${templateId}/live`, agent: false, headers: { ...headers, accept: 'text/event-stream' } }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`viewer ${i}: the live stream answered ${response.statusCode}`));
        return;
      }
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { frames[i]! += chunk.split('event: stats').length - 1; });
      response.on('error', () => undefined);
      resolve(response);
    });
    request.on('error', reject);
  })));
  return {
    close: () => {
      for (const response of responses) response.destroy();
      return { viewers: count, framesMin: Math.min(...frames), framesMax: Math.max(...frames) };
    },
  };
}
