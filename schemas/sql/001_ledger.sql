-- 001_ledger: the double-entry ledger. Applied in order by scripts/migrate
-- (which scripts/stack runs), as a superuser, inside one transaction.
--
-- Roles (created NOLOGIN here; scripts/stack gives them LOGIN and passwords):
--   payq_owner   owns the objects; nobody logs in as it
--   payq_worker  appends ledger rows and moves account balances
--   payq_reader  reads everything (reconciler, status lookups), nothing else
--   payq_recon   may only INSERT reconciliation run records
-- No application role may UPDATE or DELETE a transfer: the ledger is
-- append-only, and a trigger enforces that even against the owner.

DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['payq_owner', 'payq_worker', 'payq_reader', 'payq_recon'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

CREATE SCHEMA payq AUTHORIZATION payq_owner;
REVOKE ALL ON SCHEMA payq FROM PUBLIC;
SET LOCAL ROLE payq_owner;

-- Ids are compared byte-wise (COLLATE "C"): the worker locks accounts in
-- this order, and byte order is the same for every session and locale.
CREATE TABLE payq.accounts (
    id             text COLLATE "C" PRIMARY KEY
                   CHECK (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    currency       char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- 1 = debits_must_not_exceed_credits, 2 = credits_must_not_exceed_debits
    flags          integer NOT NULL DEFAULT 0 CHECK (flags IN (0, 1, 2)),
    debits_posted  bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The balance rules hold in the database itself, not only in the
    -- worker: a bug there cannot overdraw a restricted account.
    CONSTRAINT accounts_debits_within_credits
        CHECK (flags <> 1 OR debits_posted <= credits_posted),
    CONSTRAINT accounts_credits_within_debits
        CHECK (flags <> 2 OR credits_posted <= debits_posted)
);

-- One row per valid transfer message: posted, or rejected with its reason.
-- No foreign keys to accounts: a transfer naming an unknown account is
-- itself a ledger fact (rejected, account_not_found).
CREATE TABLE payq.transfers (
    id             text COLLATE "C" PRIMARY KEY
                   CHECK (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    batch_id       text COLLATE "C",
    debit_account  text COLLATE "C" NOT NULL,
    credit_account text COLLATE "C" NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    currency       char(3) NOT NULL,
    business_date  date NOT NULL,
    reference      text,
    metadata       jsonb,
    status         text NOT NULL CHECK (status IN ('posted', 'rejected')),
    reason         text CHECK (reason IN ('account_not_found', 'currency_mismatch',
                                          'insufficient_funds', 'credit_limit', 'overflow')),
    -- SHA-256 of the canonical message: the idempotency fingerprint.
    payload_sha256 bytea NOT NULL CHECK (length(payload_sha256) = 32),
    published_at   timestamptz,          -- the message's AMQP timestamp
    committed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT transfers_reason_iff_rejected CHECK ((status = 'rejected') = (reason IS NOT NULL)),
    CONSTRAINT transfers_distinct_accounts CHECK (debit_account <> credit_account)
);
CREATE INDEX transfers_by_day ON payq.transfers (business_date, batch_id);

-- A message whose id was already used with a different payload (transfers),
-- or an account re-opened with different fields. The original is untouched.
CREATE TABLE payq.conflicts (
    seq            bigserial PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('transfer', 'account')),
    entity_id      text COLLATE "C" NOT NULL,
    payload_sha256 bytea NOT NULL,
    payload        jsonb NOT NULL,
    reason         text NOT NULL,
    business_date  date,
    seen_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A redelivered conflicting message is recorded once.
    UNIQUE (kind, entity_id, payload_sha256)
);

-- Messages the worker could not decode: routed to payq.dead with the same
-- reason, and recorded here so reconciliation can account for them.
CREATE TABLE payq.dead_letters (
    body_sha256   bytea PRIMARY KEY,
    message_id    text,
    routing_key   text,
    field         text,
    reason        text NOT NULL,
    published_at  timestamptz,
    dead_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Finance's history of nightly runs.
CREATE TABLE payq.reconciliations (
    seq           bigserial PRIMARY KEY,
    business_date date NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    result        text NOT NULL CHECK (result IN ('balanced', 'breaks', 'failed')),
    breaks        bigint NOT NULL DEFAULT 0,
    counts        jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION payq.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payq.% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON payq.transfers
    FOR EACH ROW EXECUTE FUNCTION payq.refuse_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON payq.transfers
    FOR EACH STATEMENT EXECUTE FUNCTION payq.refuse_change();

RESET ROLE;

GRANT USAGE ON SCHEMA payq TO payq_worker, payq_reader, payq_recon;
GRANT SELECT, INSERT ON payq.transfers TO payq_worker;
GRANT SELECT, INSERT ON payq.accounts TO payq_worker;
GRANT UPDATE (debits_posted, credits_posted) ON payq.accounts TO payq_worker;
GRANT SELECT, INSERT ON payq.conflicts, payq.dead_letters TO payq_worker;
GRANT USAGE ON SEQUENCE payq.conflicts_seq_seq TO payq_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA payq TO payq_reader;
GRANT INSERT ON payq.reconciliations TO payq_recon;
GRANT USAGE ON SEQUENCE payq.reconciliations_seq_seq TO payq_recon;
