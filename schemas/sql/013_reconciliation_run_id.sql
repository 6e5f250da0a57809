-- 013_reconciliation_run_id: a run is recorded once, however often the
-- reconciler has to ask.
--
-- A run's record is its verdict in finance's history; a run that ends
-- while the primary fails over must not lose it. So the reconciler tries
-- again when the answer to its record did not come (the session lost, the
-- server gone silent, no primary yet): an unknown outcome, since the first
-- call may have committed on the node that is promoted. Each run therefore
-- names itself (run_id, random, made by the reconciler), and
-- payq.record_reconciliation() records a name once: called again with the
-- same name and the same figures, it returns the first call's seq; with
-- other figures, it refuses (unique_violation). Runs recorded before this
-- migration have no run_id.
SET LOCAL ROLE payq_owner;

ALTER TABLE payq.reconciliations ADD COLUMN run_id uuid;
CREATE UNIQUE INDEX reconciliations_run_id ON payq.reconciliations (run_id);

DROP FUNCTION payq.record_reconciliation(date, timestamptz, timestamptz, text, bigint, jsonb);

-- The seq of run p_run_id if it is recorded with these figures; NULL if it
-- is not recorded; unique_violation if it is, with other figures.
CREATE FUNCTION payq.recorded_run(p_run_id uuid, p_business_date date, p_started_at timestamptz,
                                  p_finished_at timestamptz, p_result text, p_breaks bigint,
                                  p_counts jsonb)
    RETURNS bigint
    LANGUAGE plpgsql
    STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    seq_ bigint;
    same boolean;
BEGIN
    SELECT seq, (business_date, started_at, finished_at, result, breaks, counts)
                IS NOT DISTINCT FROM
                (p_business_date, p_started_at, p_finished_at, p_result, p_breaks, p_counts)
      INTO seq_, same
      FROM payq.reconciliations WHERE run_id = p_run_id;
    IF FOUND AND NOT same THEN
        RAISE EXCEPTION 'run % is recorded already, with other figures', p_run_id
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN seq_;
END
$$;

CREATE FUNCTION payq.record_reconciliation(p_run_id uuid, p_business_date date,
                                           p_started_at timestamptz, p_finished_at timestamptz,
                                           p_result text, p_breaks bigint, p_counts jsonb)
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
    IF p_run_id IS NULL OR p_business_date IS NULL OR p_started_at IS NULL
       OR p_finished_at IS NULL OR p_result IS NULL OR p_breaks IS NULL OR p_counts IS NULL THEN
        RAISE EXCEPTION 'a run record needs every field' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Asked again (the first answer lost): the first call's row, if it
    -- committed, whatever the clock says now.
    seq_ := payq.recorded_run(p_run_id, p_business_date, p_started_at, p_finished_at, p_result,
                              p_breaks, p_counts);
    IF seq_ IS NOT NULL THEN
        RETURN seq_;
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
    BEGIN
        INSERT INTO payq.reconciliations (run_id, business_date, started_at, finished_at, result,
                                          breaks, counts, recorded_at, recorded_by, ledger_stamp)
        VALUES (p_run_id, p_business_date, p_started_at, p_finished_at, p_result, p_breaks,
                p_counts, now_, session_user, stamp)
        RETURNING seq INTO seq_;
    EXCEPTION WHEN unique_violation THEN
        -- The first call, still running on a server that had gone silent
        -- to the reconciler, committed while this one waited on the index.
        seq_ := payq.recorded_run(p_run_id, p_business_date, p_started_at, p_finished_at,
                                  p_result, p_breaks, p_counts);
    END;
    RETURN seq_;
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION payq.record_reconciliation(uuid, date, timestamptz, timestamptz, text,
                                                  bigint, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION payq.recorded_run(uuid, date, timestamptz, timestamptz, text, bigint,
                                         jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payq.record_reconciliation(uuid, date, timestamptz, timestamptz, text,
                                                     bigint, jsonb) TO payq_recon;
