// The CLI's client commands: `partner create` and `jobs watch` talk to a running server over its
// HTTP API, never to the database: in embedded mode the database belongs to the server process,
// and the API is the one place that validates, audits and invalidates caches for these changes.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import cliProgress from 'cli-progress';

const POLL_MS = 500;
/** `jobs watch` gives up when the server has not answered for this long in a row. */
const UNREACHABLE_GIVE_UP_MS = 30_000;

function baseUrl(flag: string | undefined): string {
  return (flag ?? process.env.STAMPEDE_URL ?? `http://127.0.0.1:${process.env.PORT || 3000}`).replace(/\/+$/, '');
}

class ClientError extends Error {}

async function call(url: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new ClientError(`cannot reach ${new URL(url).origin} (${cause}): is \`stampede serve\` running there? Set --url or STAMPEDE_URL.`);
  }
  const text = await response.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* not JSON: keep the text */ }
  return { status: response.status, body };
}

function refusal(status: number, body: unknown): string {
  const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  return error?.code ? `${status} ${error.code}: ${error.message ?? ''}` : `HTTP ${status}`;
}

function fail(message: string): number {
  process.stderr.write(`stampede: ${message}\n`);
  return 1;
}

async function adminToken(): Promise<string> {
  if (process.env.STAMPEDE_ADMIN_TOKEN) return process.env.STAMPEDE_ADMIN_TOKEN;
  const file = path.join(path.resolve(process.env.STAMPEDE_DATA_DIR || './.stampede'), 'admin-token');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    throw new ClientError(`no admin token: set STAMPEDE_ADMIN_TOKEN, or run where ${file} is readable (written by the first \`stampede serve\` in embedded mode)`);
  }
}

export async function createPartner(options: { url: string | undefined; name: string; rateLimit: string | undefined; json: boolean }): Promise<number> {
  try {
    const rateLimit = options.rateLimit === undefined ? undefined : Number(options.rateLimit);
    if (rateLimit !== undefined && !Number.isInteger(rateLimit)) return fail(`--rate-limit must be an integer, not ${JSON.stringify(options.rateLimit)}`);
    const { status, body } = await call(`${baseUrl(options.url)}/v1/partners`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: options.name, ...(rateLimit !== undefined ? { rateLimitPerSecond: rateLimit } : {}) }),
    });
    if (status !== 201) return fail(`the server refused: ${refusal(status, body)}`);
    const partner = body as { id: string; name: string; apiKey: string };
    if (options.json) {
      process.stdout.write(`${JSON.stringify(partner)}\n`);
    } else {
      process.stderr.write(`partner ${partner.id} (${JSON.stringify(partner.name)}) created; its API key, shown this once:\n`);
      process.stdout.write(`${partner.apiKey}\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof ClientError) return fail(error.message);
    throw error;
  }
}

interface JobState {
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  total: number;
  processed: number;
  succeeded: number;
  skipped: number;
  failed: number;
  notServed: number;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

const FINISHED = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
/** Without a terminal (CI, a pipe) a line this often instead of a redrawn bar. */
const PLAIN_LINE_EVERY_MS = 2_000;

/** Items per second since the job started (server clock), and the seconds left at that rate. */
function pace(job: JobState): { rate: number; eta: string } {
  if (!job.startedAt) return { rate: 0, eta: '-' };
  const end = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  const seconds = Math.max((end - Date.parse(job.startedAt)) / 1000, 0.001);
  const rate = job.processed / seconds;
  if (FINISHED.has(job.status)) return { rate: Math.round(rate), eta: '0s' };
  return { rate: Math.round(rate), eta: rate > 0 ? `${Math.ceil((job.total - job.processed) / rate)}s` : '-' };
}

export async function watchJob(options: { url: string | undefined; apiKey: string | undefined; jobId: string }): Promise<number> {
  const apiKey = options.apiKey ?? process.env.STAMPEDE_API_KEY;
  if (!apiKey) return fail('jobs watch needs a partner API key: set STAMPEDE_API_KEY (or --api-key)');
  const url = `${baseUrl(options.url)}/v1/jobs/${encodeURIComponent(options.jobId)}`;
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar({
      format: '{bar} {percentage}% | {value}/{total} items | {rate}/s | ETA {left} | {status}',
      emptyOnZero: true,
      hideCursor: true,
    }, cliProgress.Presets.shades_classic)
    : undefined;
  let barStarted = false;
  let lastLine: { at: number; status: string } | undefined;
  let unreachableSince: number | undefined;
  try {
    for (;;) {
      let answer;
      try {
        answer = await call(url, { headers: { 'x-api-key': apiKey } });
        unreachableSince = undefined;
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > UNREACHABLE_GIVE_UP_MS) throw error;
        await delay(POLL_MS);
        continue;
      }
      // Busy or shutting down: ask again; anything else is final.
      if (answer.status === 429 || answer.status === 503) { await delay(POLL_MS); continue; }
      if (answer.status !== 200) throw new ClientError(`job ${options.jobId}: ${refusal(answer.status, answer.body)}`);
      const job = answer.body as JobState;
      const { rate, eta } = pace(job);
      const finished = FINISHED.has(job.status);

      if (bar) {
        if (!barStarted) { bar.start(job.total, job.processed, { status: job.status, rate, left: eta }); barStarted = true; }
        bar.setTotal(job.total);
        bar.update(job.processed, { status: job.status, rate, left: eta });
        if (finished) { bar.stop(); barStarted = false; }
      } else if (!finished && (!lastLine || lastLine.status !== job.status || Date.now() - lastLine.at >= PLAIN_LINE_EVERY_MS)) {
        const percent = job.total > 0 ? Math.floor((job.processed / job.total) * 100) : 0;
        process.stderr.write(`${job.status} ${job.processed}/${job.total} items (${percent} %), ${rate}/s, ETA ${eta}\n`);
        lastLine = { at: Date.now(), status: job.status };
      }

      if (finished) {
        const counts = `${job.processed}/${job.total} processed (${rate}/s), ${job.succeeded} succeeded, ${job.skipped} skipped, ${job.failed} failed, ${job.notServed} not served`;
        if (job.status === 'SUCCEEDED') {
          process.stdout.write(`job ${options.jobId} SUCCEEDED: ${counts}\n`);
          return 0;
        }
        return fail(`job ${options.jobId} ${job.status}${job.error ? ` (${job.error})` : ''}: ${counts}`);
      }
      await delay(POLL_MS);
    }
  } catch (error) {
    if (barStarted) bar?.stop();
    if (error instanceof ClientError) return fail(error.message);
    throw error;
  }
}
