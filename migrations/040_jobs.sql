-- Bulk jobs (coupon distribution, point accrual): owner src/jobs/ (README.md there).
--
-- A job's input is staged into job_chunks (COPY) in the same transaction that creates the job and
-- enqueues it on the job queue (graphile-worker), so an accepted job (202) always has its whole
-- input in PostgreSQL and survives any crash. A chunk is processed in ONE transaction that writes
-- its rows, its failures and the job's progress (counts and next_chunk) together: a crash
-- loses nothing and repeats nothing, and the job resumes at next_chunk.
CREATE TABLE jobs (
  id           uuid PRIMARY KEY,
  partner_id   uuid NOT NULL REFERENCES partners (id),
  type         text NOT NULL CHECK (type IN ('COUPON_DISTRIBUTION', 'POINT_ACCRUAL')),
  status       text NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
  -- type-specific parameters (template id, input kind, point type, source query)
  params       jsonb NOT NULL,
  -- false while the input still has to be read from an external source (SQL source)
  staged       boolean NOT NULL DEFAULT true,
  chunk_count  integer NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
  -- chunks 0 .. next_chunk-1 are done
  next_chunk   integer NOT NULL DEFAULT 0 CHECK (next_chunk >= 0),
  total        bigint NOT NULL DEFAULT 0,
  processed    bigint NOT NULL DEFAULT 0,
  succeeded    bigint NOT NULL DEFAULT 0,
  skipped      bigint NOT NULL DEFAULT 0,
  failed       bigint NOT NULL DEFAULT 0,
  -- distribution into a limited template: items left when the stock ran out
  not_served   bigint NOT NULL DEFAULT 0,
  error        text,
  scheduled_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  CONSTRAINT jobs_counts CHECK (processed = succeeded + skipped + failed + not_served AND processed <= total),
  CONSTRAINT jobs_progress CHECK (next_chunk <= chunk_count)
);
-- ids are UUIDv7, so (partner_id, id) also orders a partner's jobs by creation
CREATE INDEX jobs_partner ON jobs (partner_id, id);
CREATE INDEX jobs_unfinished ON jobs (id) WHERE status IN ('QUEUED', 'RUNNING');

-- Staged input, one row per chunk: payload is newline-separated user ids (distribution, raw lines
-- with blanks kept so line numbers stay exact) or a JSON array of items (accrual). Deleted when the
-- job finishes. Written once and read once, so TOAST compression would only cost CPU.
CREATE TABLE job_chunks (
  job_id         uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  chunk_no       integer NOT NULL CHECK (chunk_no >= 0),
  -- position of the chunk's first item: CSV line number (1-based) or array index (0-based)
  first_position bigint NOT NULL,
  item_count     integer NOT NULL CHECK (item_count >= 0),
  payload        text NOT NULL,
  PRIMARY KEY (job_id, chunk_no)
);
ALTER TABLE job_chunks ALTER COLUMN payload SET STORAGE EXTERNAL;

-- Item-level failures, never silently dropped. The primary key makes a chunk's failure insert
-- idempotent and serves the keyset pages of GET /v1/jobs/{id}/failures.
CREATE TABLE job_failures (
  job_id   uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  position bigint NOT NULL,
  item     text NOT NULL,
  reason   text NOT NULL,
  PRIMARY KEY (job_id, position)
);

CREATE TABLE webhooks (
  id         uuid PRIMARY KEY,
  partner_id uuid NOT NULL REFERENCES partners (id),
  url        text NOT NULL CHECK (char_length(url) BETWEEN 8 AND 2048),
  kind       text NOT NULL CHECK (kind IN ('slack', 'discord', 'json')),
  events     text[] NOT NULL CHECK (cardinality(events) > 0 AND events <@ ARRAY['job.started', 'job.succeeded', 'job.failed']),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_partner ON webhooks (partner_id, id);

-- The outbox: a delivery row is written in the same transaction as the job event it announces and
-- sent by the job queue (retries with backoff); its outcome is recorded here, never on the job.
CREATE TABLE webhook_deliveries (
  id              uuid PRIMARY KEY,
  webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  event           text NOT NULL,
  -- the event as announced (job snapshot); rendered into the webhook's format when sent
  payload         jsonb NOT NULL,
  status          text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
  attempts        integer NOT NULL DEFAULT 0,
  response_status integer,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz
);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
