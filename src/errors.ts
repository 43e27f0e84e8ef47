// The one error catalog. Codes are stable API: clients branch on them. Domain code throws
// `AppError`s by code; the edge handler (src/http/error-handler.ts) maps them to HTTP and hides
// the details of anything unexpected. docs/errors.md documents every code, and a test keeps the
// two in step.

export const ERROR_CATALOG = {
  // request shape
  VALIDATION_FAILED: { status: 400, message: 'The request is not valid.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The content type is not supported here.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route.' },
  // authentication and limits
  API_KEY_MISSING: { status: 401, message: 'The X-API-Key header is required.' },
  API_KEY_INVALID: { status: 401, message: 'The API key is not valid or has been revoked.' },
  ADMIN_TOKEN_INVALID: { status: 401, message: 'A valid admin bearer token is required.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests for this API key; retry later.' },
  // partners
  PARTNER_NOT_FOUND: { status: 404, message: 'Partner not found.' },
  API_KEY_NOT_FOUND: { status: 404, message: 'API key not found.' },
  // coupon templates and claims
  TEMPLATE_NOT_FOUND: { status: 404, message: 'Coupon template not found.' },
  SOLD_OUT: { status: 409, message: 'All coupons of this event have been claimed.' },
  CLAIM_LIMIT_REACHED: { status: 409, message: 'This user already holds the maximum number of these coupons.' },
  CLAIM_NOT_OPEN: { status: 409, message: 'The claim window has not opened yet.' },
  CLAIM_CLOSED: { status: 409, message: 'The claim window has closed.' },
  CLAIM_EVENT_LIVE: { status: 409, message: 'The template\'s claim event is live; distribute after its claim window closes.' },
  // coupons
  COUPON_NOT_FOUND: { status: 404, message: 'Coupon not found.' },
  COUPON_ALREADY_USED: { status: 409, message: 'The coupon has already been used on another order.' },
  COUPON_EXPIRED: { status: 409, message: 'The coupon has expired.' },
  COUPON_NOT_YET_VALID: { status: 409, message: 'The coupon is not valid yet.' },
  MIN_ORDER_AMOUNT_NOT_MET: { status: 422, message: 'The order amount is below the coupon minimum.' },
  ORDER_MISMATCH: { status: 409, message: 'The coupon was redeemed on a different order.' },
  // points
  INSUFFICIENT_POINTS: { status: 409, message: 'The wallet does not hold enough points.' },
  POINTS_ALREADY_USED: { status: 409, message: 'Points of this earn have already been used.' },
  ALREADY_CANCELLED: { status: 409, message: 'The transaction has already been cancelled.' },
  TRANSACTION_NOT_FOUND: { status: 404, message: 'Point transaction not found.' },
  TRANSACTION_NOT_CANCELLABLE: { status: 409, message: 'This kind of transaction cannot be cancelled.' },
  SAME_WALLET_TRANSFER: { status: 400, message: 'A transfer needs two different users.' },
  IDEMPOTENCY_KEY_REQUIRED: { status: 400, message: 'The Idempotency-Key header is required.' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'The Idempotency-Key was used with a different request.' },
  IDEMPOTENCY_IN_PROGRESS: { status: 409, message: 'A request with this Idempotency-Key is still in progress.' },
  // jobs and webhooks
  JOB_NOT_FOUND: { status: 404, message: 'Job not found.' },
  JOB_NOT_CANCELLABLE: { status: 409, message: 'The job has already finished.' },
  WEBHOOK_NOT_FOUND: { status: 404, message: 'Webhook not found.' },
  WEBHOOK_URL_NOT_ALLOWED: { status: 400, message: 'Webhook receivers must be public addresses.' },
  WEBHOOK_LIMIT_REACHED: { status: 409, message: 'The partner has as many webhooks as it may have.' },
  TOO_MANY_ITEMS: { status: 413, message: 'Too many items in one request.' },
  SOURCE_QUERY_REJECTED: { status: 400, message: 'Only a single read-only SELECT is accepted as a source query.' },
  // uploads, bulk staging slots and database capacity (h-uploads: issues 15, 16)
  BULK_UPLOAD_LIMIT_REACHED: { status: 429, message: 'This partner has as many bulk uploads in progress as it may have; retry later.' },
  LIVE_VIEWERS_LIMIT_REACHED: { status: 429, message: 'This partner has as many live streams open as it may have; close one or retry later.' },
  LIVE_VIEWERS_BUSY: { status: 503, message: 'The service serves as many live streams as it can; retry later.' },
  BULK_UPLOADS_BUSY: { status: 503, message: 'The service is receiving as many bulk uploads as it can; retry later.' },
  UPLOAD_TIMEOUT: { status: 408, message: 'The request body did not arrive within the upload deadline.' },
  CSV_COLUMN_REQUIRED: { status: 400, message: 'The CSV has several columns: say which holds the user ids with ?column= (header name or 1-based index).' },
  CSV_COLUMN_NOT_FOUND: { status: 400, message: 'The CSV has no such column.' },
  CSV_MALFORMED: { status: 400, message: 'The body is not valid CSV.' },
  DATABASE_BUSY: { status: 503, message: 'All database connections are busy; retry shortly.' },
  // edges (issue 16): refusals made by the HTTP parser and the framework before any handler, and limits
  MALFORMED_REQUEST: { status: 400, message: 'The HTTP request could not be read (malformed request line, header or URL encoding).' },
  MALFORMED_JSON: { status: 400, message: 'The body is not valid JSON, or is nested too deeply.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The route does not accept this method.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request did not arrive in time.' },
  URI_TOO_LONG: { status: 414, message: 'The URL or one of its path parameters is too long.' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request line or headers are too large.' },
  BALANCE_LIMIT_REACHED: { status: 409, message: 'The wallet would hold more than 9007199254740991 points.' },
  // bulk jobs that cannot wedge, SQL sources that cannot cross tenants (issue 15: jobs and sources)
  SOURCE_NOT_CONFIGURED: { status: 400, message: 'No SQL source is registered for this partner (PUT /v1/partners/{id}/sql-source).' },
  SQL_SOURCE_NOT_FOUND: { status: 404, message: 'The partner has no SQL source registered.' },
  SOURCE_NOT_ALLOWED: { status: 400, message: 'A SQL source must connect as an ordinary role (not a superuser, no server file access) to a database other than Stampede\'s own.' },
  SOURCE_UNREACHABLE: { status: 400, message: 'The SQL source could not be reached or refused the connection.' },
  SOURCE_QUERY_FAILED: { status: 400, message: 'The source query failed while it was read.' },
  SOURCE_TIMEOUT: { status: 400, message: 'The source query ran past its statement timeout.' },
  SOURCE_ROW_LIMIT: { status: 400, message: 'The source query returned more rows than a job may read.' },
  SECRET_KEY_NOT_CONFIGURED: { status: 503, message: 'STAMPEDE_SECRET_KEY is not set: SQL sources cannot be stored or read.' },
  JOB_QUEUE_FULL: { status: 429, message: 'The partner has as many unfinished jobs as it may have; retry when one has finished.' },
  JOB_STAGED_BYTES_LIMIT: { status: 429, message: 'The partner\'s unfinished jobs hold as much staged input as they may; retry when one has finished.' },
  JOB_FAILED: { status: 500, message: 'The job failed on the server; the operator\'s logs have the details.' },
  JOB_ABANDONED: { status: 500, message: 'The job queue gave up on the job after repeated failures.' },
  // auth, durability, process and webhook hardening (issue 15/16, h-auth)
  API_KEY_LOOKUPS_LIMITED: { status: 429, message: 'Too many look-ups of unknown API keys from this address; retry later.' },
  POINTS_QUEUE_FULL: { status: 503, message: 'Too many points calls are waiting to be written; retry shortly.' },
  // live event operations (issue 19): changes to a running event, revocation
  CLAIM_PAUSED: { status: 409, message: 'Claims of this event are paused; retry when it resumes.' },
  TOTAL_QUANTITY_BELOW_ISSUED: { status: 409, message: 'totalQuantity cannot be lowered below the coupons already issued.' },
  PER_USER_LIMIT_LOWERED: { status: 409, message: 'perUserLimit can only be raised.' },
  CLAIM_END_BEFORE_START: { status: 409, message: 'claimEndsAt must be after claimStartsAt.' },
  COUPON_REVOKED: { status: 409, message: 'The coupon has been revoked.' },
  // claim throttles (issue 21)
  CLAIM_THROTTLED: { status: 429, message: 'Too many claim attempts for this event from this user or client address; retry after Retry-After seconds.' },
  // server side
  CLAIM_NOT_REPLICATED: { status: 503, message: 'The claim was not confirmed by enough Redis replicas in time; its outcome is unknown: retry with the same Idempotency-Key.' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'A backing service is unavailable; retry shortly.' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: unknown,
  ) {
    super(message ?? ERROR_CATALOG[code].message);
    this.name = 'AppError';
    this.status = ERROR_CATALOG[code].status;
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;

/** The `{error: {code, message, details?}}` body every refusal answers, over HTTP or in a batch's records. */
export function errorBody(code: ErrorCode, message?: string, details?: unknown) {
  return { error: { code, message: message ?? ERROR_CATALOG[code].message, ...(details === undefined ? {} : { details }) } };
}

/**
 * What a job, a webhook or a health probe may say about an error: `CODE: message` from this
 * catalog, never an unexpected error's own text (SQL, hosts, stack details stay in the log).
 */
export function catalogReason(error: unknown, fallback: ErrorCode = 'INTERNAL_ERROR'): string {
  if (error instanceof AppError) return error.message.startsWith(`${error.code}: `) ? error.message : `${error.code}: ${error.message}`;
  return `${fallback}: ${ERROR_CATALOG[fallback].message}`;
}
