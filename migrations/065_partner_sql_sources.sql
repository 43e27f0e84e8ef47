-- Per-partner SQL sources and per-partner job quotas (issue 15). Owner: src/partners/
-- (sql-source-*.ts) and src/jobs/ (accept-job.ts).
--
-- A partner's source is its own read-only connection string, registered by the operator and
-- stored sealed (AES-256-GCM, src/infra/secret-box.ts): iv || tag || ciphertext, the partner id
-- as associated data, so a row copied to another partner does not open. Only where it points
-- (host, database, user) is kept in clear, for GET; the password is never shown again.
CREATE TABLE partner_sql_sources (
  partner_id uuid PRIMARY KEY REFERENCES partners (id),
  sealed_url bytea NOT NULL,
  host       text NOT NULL,
  database   text NOT NULL,
  username   text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Bytes of the job's staged input (job_chunks payloads), bounded per partner over unfinished jobs.
ALTER TABLE jobs ADD COLUMN staged_bytes bigint NOT NULL DEFAULT 0 CHECK (staged_bytes >= 0);
-- The quota check and the queue's fair-share priority count a partner's unfinished jobs.
CREATE INDEX jobs_partner_unfinished ON jobs (partner_id, id) WHERE status IN ('QUEUED', 'RUNNING');
