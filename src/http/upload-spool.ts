// Receiving large request bodies without holding anything a client could pin: an upload is written
// to a spool file (no database connection, no transaction) under a total deadline, and only once it
// has arrived whole is it staged into PostgreSQL. Uploads in progress are bounded per partner and
// per process (issue 15). See docs/decisions/010-upload-spool.md.
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AppError } from '../errors.ts';

/** Tells this process's spool files from those a dead process with the same pid left behind. */
const PROCESS_TOKEN = randomBytes(6).toString('hex');
const SPOOL_FILE = /^(\d+)\.([0-9a-f]{12})\.[0-9a-f-]{36}\.upload$/;

export interface SpooledUpload {
  readonly file: string;
  readonly bytes: number;
  /** Deletes the spool file; safe to call more than once. */
  remove(): Promise<void>;
}

export interface ReceiveLimits {
  readonly maxBytes: number;
  /** The whole body must have arrived within this long, however steadily it trickles. */
  readonly deadlineMs: number;
  /** Sees every piece of the body as it is written (e.g. to learn what the reader will need). */
  readonly observe?: (chunk: Buffer) => void;
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export class UploadSpool {
  constructor(private readonly dir: string) {}

  /** Deletes spool files of processes that are gone (killed mid-upload); returns how many. */
  async removeLeftovers(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw error;
    }
    let removed = 0;
    for (const name of names) {
      const match = SPOOL_FILE.exec(name);
      if (!match) continue;
      const pid = Number(match[1]);
      const ours = pid === process.pid && match[2] === PROCESS_TOKEN;
      if (ours || (pid !== process.pid && isAlive(pid))) continue;
      await rm(path.join(this.dir, name), { force: true });
      removed++;
    }
    return removed;
  }

  /**
   * Writes `body` to a new spool file. On any failure (deadline, size, a client that goes away, a
   * disk error) the file is deleted before the error is thrown, and the body is left paused and
   * unread: the caller answers and closes the connection.
   */
  async receive(body: Readable, limits: ReceiveLimits): Promise<SpooledUpload> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${process.pid}.${PROCESS_TOKEN}.${randomUUID()}.upload`);
    const remove = () => rm(file, { force: true });
    const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
    let bytes = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        let ended = false;
        const settle = (error?: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          body.off('data', onData).off('end', onEnd).off('error', onCut).off('close', onClose);
          if (!error) return resolve();
          body.pause();
          out.destroy();
          reject(error);
        };
        const deadline = setTimeout(() => settle(new AppError('UPLOAD_TIMEOUT', `The body did not arrive within ${limits.deadlineMs} ms.`)), limits.deadlineMs);
        const onData = (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > limits.maxBytes) return settle(new AppError('PAYLOAD_TOO_LARGE', `An upload may hold at most ${limits.maxBytes} bytes.`));
          limits.observe?.(chunk);
          if (!out.write(chunk)) {
            body.pause();
            out.once('drain', () => { if (!settled) body.resume(); });
          }
        };
        const onEnd = () => {
          ended = true;
          out.once('close', () => settle()); // after 'finish': written and its descriptor closed
          out.end();
        };
        const onCut = () => settle(new AppError('VALIDATION_FAILED', 'body: the upload was cut off before it ended', [{ field: 'body', message: 'cut off' }]));
        const onClose = () => { if (!ended) onCut(); };
        out.once('error', (error) => settle(error));
        body.on('data', onData).once('end', onEnd).once('error', onCut).once('close', onClose);
        body.resume();
      });
    } catch (error) {
      await remove();
      throw error;
    }
    return { file, bytes, remove };
  }
}

/** Uploads in progress per partner and in total; refusals are immediate, never queued. */
export class UploadSlots {
  private total = 0;
  /** Only partners holding a slot have an entry, so the map is bounded by `limits.total`. */
  private readonly held = new Map<string, number>();

  constructor(private readonly limits: { perPartner: number; total: number }) {}

  /** Takes a slot for `partnerId` or refuses (429 for this partner, 503 for everyone). */
  enter(partnerId: string): () => void {
    const mine = this.held.get(partnerId) ?? 0;
    if (mine >= this.limits.perPartner) {
      throw new AppError('BULK_UPLOAD_LIMIT_REACHED', `This partner has ${mine} uploads in progress, as many as it may have.`);
    }
    if (this.total >= this.limits.total) throw new AppError('BULK_UPLOADS_BUSY');
    this.held.set(partnerId, mine + 1);
    this.total++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.total--;
      const rest = (this.held.get(partnerId) ?? 1) - 1;
      if (rest === 0) this.held.delete(partnerId);
      else this.held.set(partnerId, rest);
    };
  }

  get inProgress(): number {
    return this.total;
  }
}
