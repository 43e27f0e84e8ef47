// Staging of a job's input into job_chunks with COPY, in the caller's transaction, before the job
// is acknowledged: the whole input is in PostgreSQL and nothing is held in memory but the chunk
// being filled. Also the streaming line reader for uploaded user id lists.
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { from as copyFrom } from 'pg-copy-streams';
import type { Tx } from '../infra/db.ts';

/** COPY text format: backslash, tab, newline and carriage return must be escaped. */
export const escapeCopyText = (value: string): string =>
  /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : value;

/** Streams chunk rows of one job into job_chunks through COPY, honouring backpressure. */
export class ChunkCopyWriter {
  private readonly copy: Writable;
  private readonly done: Promise<void>;
  private chunks = 0;

  constructor(tx: Tx, private readonly jobId: string) {
    this.copy = tx.query(copyFrom('COPY job_chunks (job_id, chunk_no, first_position, item_count, payload) FROM STDIN'));
    this.done = new Promise((resolve, reject) => {
      this.copy.on('finish', resolve);
      this.copy.on('error', reject);
    });
    // Until finish() is awaited, a COPY error must not become an unhandled rejection.
    this.done.catch(() => undefined);
  }

  get chunkCount(): number {
    return this.chunks;
  }

  /** `payload` is already COPY-escaped. */
  async write(firstPosition: number, itemCount: number, payload: string): Promise<void> {
    await this.send(`${this.jobId}\t${this.chunks}\t${firstPosition}\t${itemCount}\t${payload}\n`);
    this.chunks++;
  }

  /**
   * One chunk row whose payload is sent in pieces (each already COPY-escaped), so no string of
   * the whole payload is ever built: a string over ~128 KB goes straight to V8's old generation
   * and stays there until the next full collection.
   */
  async writeInPieces(firstPosition: number, itemCount: number, pieces: AsyncIterable<string> | Iterable<string>): Promise<void> {
    await this.send(`${this.jobId}\t${this.chunks}\t${firstPosition}\t${itemCount}\t`);
    for await (const piece of pieces) await this.send(piece);
    await this.send('\n');
    this.chunks++;
  }

  private async send(text: string): Promise<void> {
    if (!this.copy.write(text)) {
      await Promise.race([new Promise((resolve) => this.copy.once('drain', resolve)), this.done]);
    }
  }

  async finish(): Promise<number> {
    this.copy.end();
    await this.done;
    return this.chunks;
  }

  /** Stops the COPY after a failure elsewhere; the caller rolls the transaction back. */
  abort(error: Error): void {
    this.copy.destroy(error);
  }
}

export const DISTRIBUTION_CHUNK_LINES = 10_000;
/** Longer lines are malformed anyway: keep enough to report them, drop the rest unread. */
const MAX_KEPT_LINE_CHARS = 200;
const HEADER = /^(user_?id|userid|user-id|user|id)$/i;

export interface LineStats {
  /** non-blank lines that are not the header */
  items: number;
  chunks: number;
  bytes: number;
}

/**
 * Reads a text body of one user id per line and stages it in chunks of DISTRIBUTION_CHUNK_LINES
 * lines. Lines are trimmed and unquoted; blank lines and the header are kept as empty lines so a
 * line's position in its chunk gives its line number in the upload. Validation of the ids is the
 * job's (malformed lines become item failures with their line number).
 */
export async function stageLines(
  body: Readable, writer: ChunkCopyWriter, options: { header: boolean | undefined; maxBytes: number; onTooLarge: () => Error },
): Promise<LineStats> {
  const decoder = new StringDecoder('utf8');
  let lines: string[] = [];
  let items = 0;
  let chunkItems = 0;
  let lineNo = 0;
  let firstLineOfChunk = 1;
  let carry = '';
  let overlong = false;
  let bytes = 0;

  const addLine = (raw: string) => {
    lineNo++;
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    line = line.trim();
    if (line.length >= 2 && line.startsWith('"') && line.endsWith('"')) line = line.slice(1, -1).trim();
    if (line.includes('\0')) line = line.replaceAll('\0', '\uFFFD');
    if (lineNo === 1 && (options.header ?? HEADER.test(line))) line = '';
    if (line !== '') {
      items++;
      chunkItems++;
    }
    lines.push(escapeCopyText(line.slice(0, MAX_KEPT_LINE_CHARS)));
  };
  const flush = async () => {
    if (lines.length === 0) return;
    const payload = lines.join('\\n');
    const first = firstLineOfChunk;
    const count = chunkItems;
    firstLineOfChunk += lines.length;
    lines = [];
    chunkItems = 0;
    await writer.write(first, count, payload);
  };

  for await (const buffer of body as AsyncIterable<Buffer>) {
    bytes += buffer.length;
    if (bytes > options.maxBytes) throw options.onTooLarge();
    const parts = decoder.write(buffer).split('\n');
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i]!;
      addLine(overlong ? carry : carry + part);
      carry = '';
      overlong = false;
      if (lines.length >= DISTRIBUTION_CHUNK_LINES) await flush();
    }
    const tail = parts[parts.length - 1]!;
    if (!overlong) {
      carry += tail;
      if (carry.length > MAX_KEPT_LINE_CHARS) {
        carry = carry.slice(0, MAX_KEPT_LINE_CHARS + 1);
        overlong = true;
      }
    }
  }
  const rest = (overlong ? carry : carry + decoder.end());
  if (rest !== '') addLine(rest);
  await flush();
  return { items, chunks: writer.chunkCount, bytes };
}
