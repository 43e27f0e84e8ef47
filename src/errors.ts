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
  SOURCE_NOT_CONFIGURED: { status: 400, message: 'No source database is configured (STAMPEDE_SOURCE_DATABASE_URL).' },
  SOURCE_QUERY_REJECTED: { status: 400, message: 'Only a single read-only SELECT is accepted as a source query.' },
  // auth, durability, process and webhook hardening (issue 15/16, h-auth)
  API_KEY_LOOKUPS_LIMITED: { status: 429, message: 'Too many look-ups of unknown API keys from this address; retry later.' },
  POINTS_QUEUE_FULL: { status: 503, message: 'Too many points calls are waiting to be written; retry shortly.' },
  // server side
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
