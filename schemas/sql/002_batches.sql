-- 002_batches: the worker's batch journal. Every batch transaction the
-- worker commits (every attempt, including retries and redeliveries whose
-- ids are all in the ledger already) inserts exactly one row here, just
-- before its COMMIT.
--
-- Why a row in every transaction: a transaction that writes nothing has no
-- transaction id, and its COMMIT does not wait for the synchronous standby.
-- A retried batch whose rows an earlier, cancelled or terminated attempt
-- committed locally (visible on the primary, perhaps absent from the
-- standby) would then "commit" at once and be acknowledged although the
-- standby holds none of it. With this row the COMMIT writes a commit record
-- at an LSN past every transaction committed before it, the earlier attempt
-- included, and waits until the standby has flushed that far. Operators get
-- the history of batches with their outcome counts as a bonus.
--
-- Append-only like payq.transfers: the worker may only INSERT.

SET LOCAL ROLE payq_owner;

CREATE TABLE payq.batches (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stable across the attempts of one batch: "<worker>:<n>".
    batch_id     text NOT NULL,
    worker       text NOT NULL,  -- host:pid of the worker process
    attempt      integer NOT NULL CHECK (attempt >= 1),
    messages     integer NOT NULL CHECK (messages >= 0),
    posted       integer NOT NULL CHECK (posted >= 0),
    rejected     integer NOT NULL CHECK (rejected >= 0),
    duplicate    integer NOT NULL CHECK (duplicate >= 0),
    conflict     integer NOT NULL CHECK (conflict >= 0),
    dead         integer NOT NULL CHECK (dead >= 0),
    opened       integer NOT NULL CHECK (opened >= 0),  -- accounts opened
    began_at     timestamptz NOT NULL DEFAULT now(),    -- the transaction's start
    -- The moment the row was written, just before COMMIT; the COMMIT itself
    -- (and its wait for the standby) follows.
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX batches_by_time ON payq.batches (committed_at);

CREATE TRIGGER batches_append_only BEFORE UPDATE OR DELETE ON payq.batches
    FOR EACH ROW EXECUTE FUNCTION payq.refuse_change();
CREATE TRIGGER batches_no_truncate BEFORE TRUNCATE ON payq.batches
    FOR EACH STATEMENT EXECUTE FUNCTION payq.refuse_change();

RESET ROLE;

-- INSERT only: an identity column needs no sequence privilege.
GRANT INSERT ON payq.batches TO payq_worker;
GRANT SELECT ON payq.batches TO payq_reader;
