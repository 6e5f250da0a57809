-- 008_recon_checkpoints: the per-account invariant verifies only what is new
-- (issue 16, "reconciliation linear in the day's size").
--
-- Until now every run summed the posted transfers of every date and compared
-- them with each account's stored debits_posted/credits_posted: 13-20 s at
-- 25M rows, growing with history. payq.verify_books() keeps, per account, the
-- sums of the posted transfers up to a watermark (payq.recon_checkpoints),
-- and each run checks
--     stored totals = checkpoint + posted transfers past the watermark
-- for EVERY account (so tampering with an account whose transfers are all
-- older than the watermark is still caught), then moves the watermark.
--
-- The watermark must be commit-ordered. Identity values and timestamps are
-- drawn before COMMIT and become visible out of order: a watermark "seq <= N"
-- or "committed_at <= T" taken while a batch with a smaller value is still
-- committing would skip that batch's rows forever. Transaction ids are the
-- order that works: in the run's REPEATABLE READ snapshot, every transaction
-- whose id is below pg_snapshot_xmin(pg_current_snapshot()) has ended, and
-- every later transaction gets a larger id. So "rows whose inserting
-- transaction id (xmin, widened to 64 bits against the snapshot) is below
-- H" is a set that can no longer change once H was a snapshot's xmin: the
-- checkpoint holds exactly that set's sums. Transaction ids are the
-- cluster's, replicated, so this survives a Patroni failover unchanged.
-- payq.batches (one row per batch transaction) would not help: its seq and
-- committed_at are drawn before COMMIT too.
--
-- xmin has no index, so finding the rows past H uses transfers.committed_at
-- (clock_timestamp() at insert, with a BRIN index: cheap for an append-only
-- table) only to narrow the scan: a row whose transaction id is >= H was
-- inserted by a transaction running at the watermark's snapshot (its
-- committed_at >= that transaction's start, >= the oldest xact_start then)
-- or by a later one. window_from keeps that oldest start less a margin
-- (WINDOW_MARGIN, for clock steps between nodes after a failover).
--
-- Fail-safe: should a row past H ever fall outside the window (clock stepped
-- back more than the margin), or a verified row be changed by someone who
-- bypasses the append-only triggers, the incremental sums disagree with the
-- stored totals. Any disagreement makes the function verify from scratch in
-- the same snapshot (the old query, all dates) and rebuild the checkpoints
-- from it: a break is reported only if the full check confirms it, and a
-- wrong watermark costs one slow run, never a wrong verdict. What the
-- incremental check cannot see is a past, already verified transfer changed
-- together with its accounts' stored totals, or changed with triggers
-- disabled and committed_at left old: the full check (p_full, the
-- reconciler's --full-invariants) is for that, e.g. weekly.

SET LOCAL ROLE payq_owner;

CREATE TABLE payq.recon_checkpoints (
    account text COLLATE "C" PRIMARY KEY,
    debits  numeric NOT NULL,  -- sum of posted transfers debiting it, below the watermark
    credits numeric NOT NULL
);

CREATE TABLE payq.recon_watermark (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    xid_horizon xid8 NOT NULL,         -- checkpoints hold every row with xmin below it
    window_from timestamptz NOT NULL,  -- every row at or past the horizon was inserted after it
    verified_at timestamptz NOT NULL,
    full_at     timestamptz NOT NULL   -- the last verification from scratch
);

CREATE INDEX transfers_by_commit_time ON payq.transfers USING brin (committed_at);

RESET ROLE;

-- xact_start of every session, to bound window_from by the oldest running
-- transaction (without it only the caller's sessions are visible).
GRANT pg_read_all_stats TO payq_owner;

SET LOCAL ROLE payq_owner;

-- A row's xmin widened to 64 bits against the snapshot's next id. No SET
-- clause, so that the planner inlines it (a call per row would cost more
-- than the sum). Operators only: nothing resolved through search_path.
CREATE FUNCTION payq.recon_full_xid(p_xmin xid, p_next bigint)
    RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- xmin widened to 64 bits: the 32-bit id that is at most 2^32 ids
    -- behind the snapshot's next id. Only used for rows inside the window.
    SELECT p_next - ((p_next % 4294967296 - p_xmin::text::bigint + 4294967296) % 4294967296)
$$;

-- Returns the violations, in the shape of the reconciler's old invariants
-- query: kind 'currency' (debits and credits of a currency do not sum alike)
-- or 'account' (stored totals differ from the posted transfers' sums; known
-- false for an account that only transfers name). Must be called in a
-- REPEATABLE READ transaction, so that every statement sees one snapshot.
CREATE FUNCTION payq.verify_books(p_full boolean)
    RETURNS TABLE (kind text, key text, stored_debits numeric, stored_credits numeric,
                   sum_debits numeric, sum_credits numeric, known boolean, mode text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    window_margin CONSTANT interval := interval '10 minutes';
    snap pg_snapshot := pg_current_snapshot();
    next_ bigint := pg_snapshot_xmax(snap)::text::bigint;
    horizon bigint := pg_snapshot_xmin(snap)::text::bigint;
    oldest timestamptz;
    wm payq.recon_watermark;
    bad bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'repeatable read' THEN
        RAISE EXCEPTION 'payq.verify_books needs a REPEATABLE READ transaction'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    -- One run at a time: a concurrent run that moved the watermark after
    -- this snapshot makes this one fail (serialization), to be retried.
    SELECT * INTO wm FROM payq.recon_watermark FOR UPDATE;
    SELECT least(now(), min(a.xact_start)) INTO oldest
      FROM pg_stat_activity a WHERE a.xact_start IS NOT NULL;

    IF NOT p_full AND wm.one IS NOT NULL THEN
        -- Rows past the old horizon, visible in this snapshot: 'new' ones
        -- (below the new horizon) move into the checkpoints.
        CREATE TEMP TABLE recon_delta ON COMMIT DROP AS
        SELECT s.account, sum(s.d) AS d_all, sum(s.c) AS c_all,
               sum(s.d) FILTER (WHERE s.fx < horizon) AS d_new,
               sum(s.c) FILTER (WHERE s.fx < horizon) AS c_new
          FROM (SELECT t.debit_account AS account, t.amount::numeric AS d, 0::numeric AS c,
                       payq.recon_full_xid(t.xmin, next_) AS fx
                  FROM payq.transfers t
                 WHERE t.committed_at >= wm.window_from AND t.status = 'posted'
                UNION ALL
                SELECT t.credit_account, 0, t.amount, payq.recon_full_xid(t.xmin, next_)
                  FROM payq.transfers t
                 WHERE t.committed_at >= wm.window_from AND t.status = 'posted') s
         WHERE s.fx >= wm.xid_horizon::text::bigint
         GROUP BY s.account;
        SELECT count(*) INTO bad
          FROM payq.accounts a
          FULL JOIN payq.recon_checkpoints k ON k.account = a.id
          FULL JOIN recon_delta x ON x.account = coalesce(a.id, k.account)
         WHERE a.id IS NULL
            OR a.debits_posted <> coalesce(k.debits, 0) + coalesce(x.d_all, 0)
            OR a.credits_posted <> coalesce(k.credits, 0) + coalesce(x.c_all, 0);
        IF bad = 0 THEN
            INSERT INTO payq.recon_checkpoints AS k (account, debits, credits)
            SELECT x.account, coalesce(x.d_new, 0), coalesce(x.c_new, 0)
              FROM recon_delta x WHERE x.d_new IS NOT NULL OR x.c_new IS NOT NULL
            ON CONFLICT (account) DO UPDATE
               SET debits = k.debits + excluded.debits, credits = k.credits + excluded.credits;
            UPDATE payq.recon_watermark
               SET xid_horizon = horizon::text::xid8,
                   window_from = oldest - window_margin, verified_at = now();
            RETURN QUERY
            SELECT 'currency'::text, a.currency::text, sum(a.debits_posted)::numeric,
                   sum(a.credits_posted)::numeric, NULL::numeric, NULL::numeric, true,
                   'incremental'::text
              FROM payq.accounts a GROUP BY a.currency
            HAVING sum(a.debits_posted) <> sum(a.credits_posted);
            RETURN;
        END IF;
    END IF;

    -- From scratch, all dates (the first run, p_full, or a disagreement).
    -- Rows older than the window are below any horizon; inside it, the
    -- transaction id decides what the checkpoints take.
    CREATE TEMP TABLE recon_full ON COMMIT DROP AS
    SELECT s.account, sum(s.d) AS d_all, sum(s.c) AS c_all,
           sum(s.d) FILTER (WHERE s.below) AS d_new, sum(s.c) FILTER (WHERE s.below) AS c_new
      FROM (SELECT t.debit_account AS account, t.amount::numeric AS d, 0::numeric AS c,
                   t.committed_at < oldest - window_margin
                   OR payq.recon_full_xid(t.xmin, next_) < horizon AS below
              FROM payq.transfers t WHERE t.status = 'posted'
            UNION ALL
            SELECT t.credit_account, 0, t.amount,
                   t.committed_at < oldest - window_margin
                   OR payq.recon_full_xid(t.xmin, next_) < horizon
              FROM payq.transfers t WHERE t.status = 'posted') s
     GROUP BY s.account;
    DELETE FROM payq.recon_checkpoints;
    INSERT INTO payq.recon_checkpoints (account, debits, credits)
    SELECT f.account, coalesce(f.d_new, 0), coalesce(f.c_new, 0) FROM recon_full f;
    INSERT INTO payq.recon_watermark (xid_horizon, window_from, verified_at, full_at)
    VALUES (horizon::text::xid8, oldest - window_margin, now(), now())
    ON CONFLICT (one) DO UPDATE
       SET xid_horizon = excluded.xid_horizon, window_from = excluded.window_from,
           verified_at = excluded.verified_at, full_at = excluded.full_at;
    RETURN QUERY
    SELECT 'currency'::text, a.currency::text, sum(a.debits_posted)::numeric,
           sum(a.credits_posted)::numeric, NULL::numeric, NULL::numeric, true, 'full'::text
      FROM payq.accounts a GROUP BY a.currency
    HAVING sum(a.debits_posted) <> sum(a.credits_posted)
    UNION ALL
    SELECT 'account', coalesce(a.id, f.account), a.debits_posted::numeric,
           a.credits_posted::numeric, coalesce(f.d_all, 0), coalesce(f.c_all, 0),
           a.id IS NOT NULL, 'full'
      FROM payq.accounts a FULL JOIN recon_full f ON f.account = a.id
     WHERE a.id IS NULL OR a.debits_posted <> coalesce(f.d_all, 0)
        OR a.credits_posted <> coalesce(f.c_all, 0);
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION payq.verify_books(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payq.verify_books(boolean) TO payq_recon;
GRANT SELECT ON payq.recon_checkpoints, payq.recon_watermark TO payq_reader;
