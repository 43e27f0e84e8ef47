// Staging of a job's input into job_chunks with COPY, in the caller's transaction, before the job
// is acknowledged: the whole input is in PostgreSQL and nothing is held in memory but the chunk
// being filled. (Uploaded CSV is read by src/coupons/distribution-csv.ts.)
import type { Writable } from 'node:stream';
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
