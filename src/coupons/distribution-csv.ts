// A distribution's CSV upload, read as CSV (RFC 4180, streaming: quoted fields with commas, quotes
// and newlines, CRLF or LF, a UTF-8 BOM; by csv-parse when a quote occurs) and staged as job chunks. One column holds
// the user ids: `column` names it (header name, or 1-based index); a one-column file needs none; a
// file of several columns without `column` is refused, never read by guess.
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { CsvError, parse } from 'csv-parse';
import { AppError } from '../errors.ts';
import { DISTRIBUTION_CHUNK_LINES, escapeCopyText, type ChunkCopyWriter } from '../jobs/chunk-staging.ts';
import { MISSING_USER_ID_LINE } from './distribution-repository.ts';

/** Longer values are malformed anyway: keep enough to report them. */
const MAX_KEPT_VALUE_CHARS = 200;
/** A record longer than this refuses the upload (CSV_MALFORMED): it bounds what one record may cost. */
const MAX_RECORD_BYTES = 65_536;
/** A one-column file whose first value is one of these starts with its header. */
const HEADER = /^(user_?id|userid|user-id|user|id)$/i;

export interface CsvOptions {
  /** Header name, or 1-based index as digits. */
  readonly column: string | undefined;
  /** Whether the first row is a header; default: yes for several columns, detected by name for one. */
  readonly header: boolean | undefined;
}

export interface CsvStats {
  /** Rows that are neither blank nor the header. */
  readonly items: number;
  readonly chunks: number;
}

interface Selection {
  readonly index: number;
  /** `column` was given: a row of another width is still read at `index` (else such a row is malformed). */
  readonly chosen: boolean;
}

/** Decides from the first row which field holds the user id and whether that row is a header. */
function selectColumn(first: string[], options: CsvOptions): Selection & { header: boolean } {
  const { column } = options;
  if (column === undefined) {
    if (first.length > 1) {
      throw new AppError('CSV_COLUMN_REQUIRED', `The CSV has ${first.length} columns: say which holds the user ids with ?column= (header name or 1-based index).`,
        { columns: first.length });
    }
    return { index: 0, chosen: false, header: options.header ?? HEADER.test(first[0] ?? '') };
  }
  if (/^\d+$/.test(column)) {
    const index = Number(column) - 1;
    if (index < 0 || index >= first.length) {
      throw new AppError('CSV_COLUMN_NOT_FOUND', `column=${column}: the first row has ${first.length} field(s).`, { columns: first.length });
    }
    return { index, chosen: true, header: options.header ?? (first.length > 1 || HEADER.test(first[0] ?? '')) };
  }
  if (options.header === false) {
    throw new AppError('VALIDATION_FAILED', 'querystring.column: a column chosen by name needs the header row (header=false)',
      [{ field: 'querystring.column', message: 'needs a header row' }]);
  }
  const index = first.indexOf(column);
  if (index < 0) throw new AppError('CSV_COLUMN_NOT_FOUND', `column=${column}: no header field has this name.`, { columns: first.length });
  return { index, chosen: true, header: true };
}

/**
 * Reads `input` and stages it in chunks of about DISTRIBUTION_CHUNK_LINES physical lines. Every
 * physical line of the file keeps its place (blank lines, the header and the continuation lines of
 * a multi-line record as empty lines), so an item's position is the line number its record starts
 * on, and a bad id becomes an item failure with that line number. Memory holds one chunk.
 *
 * `quoted: false` (the caller saw no `"` byte in the input) takes a reader of its own: without
 * quotes, RFC 4180 is lines split at commas, and csv-parse costs ~5 µs per record on top (a
 * 10,000,000-line upload: +50 s; see docs/decisions/010-upload-spool.md).
 */
export async function stageCsv(input: Readable, writer: ChunkCopyWriter, options: CsvOptions & { quoted: boolean }): Promise<CsvStats> {
  let selection: (Selection & { header: boolean }) | undefined;
  let lines: string[] = [];
  let chunkItems = 0;
  let items = 0;
  let firstLineOfChunk = 1;
  const flush = async () => {
    if (lines.length === 0) return;
    const first = firstLineOfChunk;
    const count = chunkItems;
    const payload = lines.join('\\n');
    firstLineOfChunk += lines.length;
    lines = [];
    chunkItems = 0;
    await writer.write(first, count, payload);
  };
  /** Adds one record; true when a chunk is full. */
  const add = (record: string[]): boolean => {
    let value: string;
    if (selection === undefined) {
      selection = selectColumn(record, options);
      value = selection.header ? '' : userIdOf(record, selection);
    } else {
      value = userIdOf(record, selection);
    }
    if (value !== '') {
      items++;
      chunkItems++;
    }
    lines.push(value);
    // Continuation lines of a record that spans several: only a quoted field holds a line break.
    // (Counted here: csv-parse's info.lines counts a quoted CRLF as two lines.)
    for (const field of record) {
      for (let at = field.indexOf('\n'); at >= 0; at = field.indexOf('\n', at + 1)) lines.push('');
    }
    return lines.length >= DISTRIBUTION_CHUNK_LINES;
  };

  try {
    if (options.quoted) {
      await readQuoted(input, add, flush);
    } else {
      await readUnquoted(input, add, flush);
    }
  } finally {
    input.destroy();
  }
  await flush();
  return { items, chunks: writer.chunkCount };
}

type AddRecord = (record: string[]) => boolean;

async function readQuoted(input: Readable, add: AddRecord, flush: () => Promise<void>): Promise<void> {
  const parser = parse({
    bom: true,
    // A stray quote inside an unquoted field is kept as a character (the id is then malformed).
    relax_quotes: true,
    relax_column_count: true,
    skip_empty_lines: false,
    trim: true,
    record_delimiter: ['\r\n', '\n'],
    max_record_size: MAX_RECORD_BYTES,
  });
  input.on('error', (error) => parser.destroy(error));
  input.pipe(parser);
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (add(record)) await flush();
    }
  } catch (error) {
    if (error instanceof CsvError) {
      const line = (error as CsvError & { lines?: number }).lines;
      throw new AppError('CSV_MALFORMED', `line ${line ?? '?'}: ${error.message}`, { line });
    }
    throw error;
  } finally {
    input.unpipe(parser);
    parser.destroy();
  }
}

/** CSV without a quote: LF or CRLF lines, fields split at commas and trimmed, as csv-parse would. */
async function readUnquoted(input: Readable, add: AddRecord, flush: () => Promise<void>): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let lineNo = 0;
  const record = (raw: string): string[] => {
    lineNo++;
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (lineNo === 1 && line.startsWith('\uFEFF')) line = line.slice(1);
    return line.includes(',') ? line.split(',').map((field) => field.trim()) : [line.trim()];
  };
  const tooLong = () => new AppError('CSV_MALFORMED', `line ${lineNo + 1}: a record is longer than ${MAX_RECORD_BYTES} bytes`, { line: lineNo + 1 });
  for await (const buffer of input as AsyncIterable<Buffer>) {
    const parts = decoder.write(buffer).split('\n');
    for (let i = 0; i < parts.length - 1; i++) {
      const raw = i === 0 ? carry + parts[0]! : parts[i]!;
      if (raw.length > MAX_RECORD_BYTES) throw tooLong();
      if (add(record(raw))) await flush();
    }
    carry = parts.length === 1 ? carry + parts[0]! : parts[parts.length - 1]!;
    if (carry.length > MAX_RECORD_BYTES) throw tooLong();
  }
  const rest = carry + decoder.end();
  if (rest !== '') add(record(rest));
}

/** The row's user id as a COPY-escaped chunk line: '' for a blank row, MISSING_USER_ID_LINE for an empty field. */
function userIdOf(record: string[], selection: Selection): string {
  if (record.length === 1 && record[0] === '') return ''; // a blank line
  if (!selection.chosen && record.length > 1) {
    // a one-column file with a row of several fields: reported as it stands, never split by guess
    return escapeCopyText(clean(record.join(',')));
  }
  const value = record[selection.index];
  if (value === undefined || value === '') return MISSING_USER_ID_LINE;
  return escapeCopyText(clean(value));
}

/**
 * COPY refuses NUL, and a staged chunk holds one id per line, so a quoted line break cannot stay
 * either: both become U+FFFD (such an id is malformed anyway, and reported so).
 */
const clean = (value: string): string => {
  const kept = value.slice(0, MAX_KEPT_VALUE_CHARS);
  return /[\0\r\n]/.test(kept) ? kept.replace(/[\0\r\n]/g, '\uFFFD') : kept;
};
