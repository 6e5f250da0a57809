-- 010_verify_books_one_scan: payq.verify_books() (008) at half the cost.
--
-- Timing reconciliation at 1M-10M transfers a day (issue 16) showed the
-- books' invariant as the most expensive statement of a run: 008 reads the
-- window twice (a UNION ALL of a debit-side and a credit-side scan, the
-- transaction id widened on each), casts every amount to numeric and sums
-- numerics (no 128-bit fast path). Here one scan feeds both sides through
-- GROUPING SETS ((debit_account), (credit_account)), amounts are summed as
-- bigint (PostgreSQL accumulates int8 sums in 128 bits and returns numeric,
-- so no overflow and the same result type), and the subquery is kept apart
-- (OFFSET 0) so the transaction id is widened once per row. The second
-- GROUP BY folds each account's debit row and credit row together (two rows
-- per account touched). Same inputs, same sums, same watermark logic and
-- fail-safe as 008, whose header argues them; only the plan changes.
-- Measured back to back on 4.16M rows in the window (the machine shared
-- and loaded): the delta query 79.7 s -> 41.7 s, identical sums.

SET LOCAL ROLE payq_owner;

CREATE OR REPLACE FUNCTION payq.verify_books(p_full boolean)
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
        SELECT g.account, sum(g.a) FILTER (WHERE g.deb) AS d_all,
               sum(g.a) FILTER (WHERE NOT g.deb) AS c_all,
               sum(g.n) FILTER (WHERE g.deb) AS d_new, sum(g.n) FILTER (WHERE NOT g.deb) AS c_new
          FROM (SELECT CASE WHEN grouping(r.debit_account) = 0 THEN r.debit_account
                            ELSE r.credit_account END AS account,
                       grouping(r.debit_account) = 0 AS deb, sum(r.amount) AS a,
                       sum(r.amount) FILTER (WHERE r.fx < horizon) AS n
                  FROM (SELECT t.debit_account, t.credit_account, t.amount,
                               payq.recon_full_xid(t.xmin, next_) AS fx
                          FROM payq.transfers t
                         WHERE t.committed_at >= wm.window_from AND t.status = 'posted'
                        OFFSET 0) r
                 WHERE r.fx >= wm.xid_horizon::text::bigint
                 GROUP BY GROUPING SETS ((r.debit_account), (r.credit_account))) g
         GROUP BY g.account;
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
    SELECT g.account, sum(g.a) FILTER (WHERE g.deb) AS d_all,
           sum(g.a) FILTER (WHERE NOT g.deb) AS c_all,
           sum(g.n) FILTER (WHERE g.deb) AS d_new, sum(g.n) FILTER (WHERE NOT g.deb) AS c_new
      FROM (SELECT CASE WHEN grouping(r.debit_account) = 0 THEN r.debit_account
                        ELSE r.credit_account END AS account,
                   grouping(r.debit_account) = 0 AS deb, sum(r.amount) AS a,
                   sum(r.amount) FILTER (WHERE r.below) AS n
              FROM (SELECT t.debit_account, t.credit_account, t.amount,
                           t.committed_at < oldest - window_margin
                           OR payq.recon_full_xid(t.xmin, next_) < horizon AS below
                      FROM payq.transfers t WHERE t.status = 'posted' OFFSET 0) r
             GROUP BY GROUPING SETS ((r.debit_account), (r.credit_account))) g
     GROUP BY g.account;
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
