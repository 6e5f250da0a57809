-- 003_reconciliation_record: the reconciler records its runs through
-- payq.record_reconciliation() instead of inserting rows itself (issue 17).
--
-- With INSERT on payq.reconciliations, payq_recon could write a "balanced"
-- row for a run that never happened, with any times. The function runs as
-- payq_owner (SECURITY DEFINER) and refuses what it can check:
--   - a run that did not just end: finished_at after the call, or more than
--     an hour before it (no back-dated history), or started after it ended;
--   - a verdict that contradicts its own figures: "balanced" with breaks,
--     or counts.result / counts.breaks_total that say otherwise;
-- and stamps what only the database knows at that moment: when and by whom
-- the row was recorded, and the ledger's own rows of the date (count, and
-- posted/rejected), so that a record whose claimed ledger_rows differs
-- from the stamp stands out (see the README, "Reconciliation").
-- payq_recon keeps no direct INSERT.

ALTER TABLE payq.reconciliations
    ADD COLUMN recorded_at  timestamptz,  -- NULL: recorded before this migration
    ADD COLUMN recorded_by  text,
    ADD COLUMN ledger_stamp jsonb;

SET LOCAL ROLE payq_owner;

CREATE FUNCTION payq.record_reconciliation(p_business_date date, p_started_at timestamptz,
                                           p_finished_at timestamptz, p_result text,
                                           p_breaks bigint, p_counts jsonb)
    RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
    stamp jsonb;
    seq_ bigint;
BEGIN
    IF p_business_date IS NULL OR p_started_at IS NULL OR p_finished_at IS NULL
       OR p_result IS NULL OR p_breaks IS NULL OR p_counts IS NULL THEN
        RAISE EXCEPTION 'a run record needs every field' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_finished_at > now_ + interval '5 seconds'
       OR p_finished_at < now_ - interval '1 hour'
       OR p_started_at > p_finished_at THEN
        RAISE EXCEPTION 'a run is recorded when it ends: started % finished %, now %',
            p_started_at, p_finished_at, now_ USING ERRCODE = 'check_violation';
    END IF;
    IF p_breaks < 0
       OR (p_result = 'balanced' AND p_breaks <> 0)
       OR (p_counts ? 'breaks_total' AND (p_counts->>'breaks_total')::bigint <> p_breaks)
       OR (p_counts ? 'result' AND p_counts->>'result' <> p_result
           AND NOT (p_result = 'breaks' AND p_counts->>'result' = 'in_flight')) THEN
        RAISE EXCEPTION 'the verdict % contradicts its own figures', p_result
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT jsonb_build_object('at', now_,
                              'ledger_rows', count(*),
                              'posted', count(*) FILTER (WHERE status = 'posted'),
                              'rejected', count(*) FILTER (WHERE status <> 'posted'))
      INTO stamp
      FROM payq.transfers WHERE business_date = p_business_date;
    INSERT INTO payq.reconciliations (business_date, started_at, finished_at, result, breaks,
                                      counts, recorded_at, recorded_by, ledger_stamp)
    VALUES (p_business_date, p_started_at, p_finished_at, p_result, p_breaks, p_counts,
            now_, session_user, stamp)
    RETURNING seq INTO seq_;
    RETURN seq_;
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION payq.record_reconciliation(date, timestamptz, timestamptz, text, bigint,
                                                  jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payq.record_reconciliation(date, timestamptz, timestamptz, text,
                                                     bigint, jsonb) TO payq_recon;
REVOKE INSERT ON payq.reconciliations FROM payq_recon;
REVOKE USAGE ON SEQUENCE payq.reconciliations_seq_seq FROM payq_recon;
GRANT SELECT ON payq.reconciliations TO payq_reader;
