-- Partners (shops) and their API keys. A key is shown once; only its SHA-256 is stored.
CREATE TABLE partners (
  id                    uuid PRIMARY KEY,
  name                  text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  -- NULL: the service default (STAMPEDE_RATE_LIMIT_PER_SECOND)
  rate_limit_per_second integer CHECK (rate_limit_per_second > 0),
  created_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id          uuid PRIMARY KEY,
  partner_id  uuid NOT NULL REFERENCES partners (id),
  -- first characters of the key, to tell keys apart in listings and logs
  prefix      text NOT NULL,
  key_hash    bytea NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
CREATE INDEX api_keys_partner ON api_keys (partner_id);
