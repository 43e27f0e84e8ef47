// The id a request is known by in logs and in its X-Request-Id answer header: the caller's own when
// it gives a plausible one, a UUIDv7 otherwise.
import type { IncomingHttpHeaders } from 'node:http';
import { v7 as uuidv7 } from 'uuid';

const GIVEN = /^[\w.-]{1,128}$/;

export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && GIVEN.test(given) ? given : uuidv7();
}
