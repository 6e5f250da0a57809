-- 004_audit_index: where in the payq.audit stream each business date
-- starts, so that a reconciliation with default options finds transfers
-- published any time before their date (forward-dated), not only within
-- reconciler.lookback_hours of it (issue 17).
--
-- Offsets are the stream's own (the x-stream-offset header of each
-- delivery). Runs with default options read contiguously: each starts at or
-- before indexed_to, where the previous one stopped (its marker), so every
-- offset below indexed_to was read by some run, which noted the first
-- offset of every business date it saw. A run of date D starts at
-- audit_index[D], or at indexed_to when D has no message before it; the
-- first run ever starts at the stream's first message.

SET LOCAL ROLE payq_owner;

CREATE TABLE payq.audit_index (
    business_date date PRIMARY KEY,
    first_offset  bigint NOT NULL CHECK (first_offset >= 0)
);

CREATE TABLE payq.audit_index_state (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    indexed_to   bigint NOT NULL CHECK (indexed_to >= 0),  -- offsets below it are indexed
    updated_at   timestamptz NOT NULL
);

-- Called by the reconciler (payq_recon) after a default read from p_from up
-- to its marker at p_to: notes the first offset of each date seen. A read
-- that started after indexed_to would leave a hole: it is ignored (false).
CREATE FUNCTION payq.record_audit_index(p_from bigint, p_to bigint, p_dates date[],
                                        p_offsets bigint[])
    RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur bigint;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_from < 0 OR p_to < p_from
       OR cardinality(p_dates) IS DISTINCT FROM cardinality(p_offsets) THEN
        RAISE EXCEPTION 'invalid audit index range' USING ERRCODE = 'check_violation';
    END IF;
    SELECT indexed_to INTO cur FROM payq.audit_index_state FOR UPDATE;
    IF FOUND AND p_from > cur THEN
        RETURN false;
    END IF;
    INSERT INTO payq.audit_index AS a (business_date, first_offset)
    SELECT d, min(o) FROM unnest(p_dates, p_offsets) AS u(d, o)
     WHERE o BETWEEN p_from AND p_to GROUP BY d
    ON CONFLICT (business_date)
        DO UPDATE SET first_offset = least(a.first_offset, excluded.first_offset);
    INSERT INTO payq.audit_index_state AS s (singleton, indexed_to, updated_at)
    VALUES (true, p_to, clock_timestamp())
    ON CONFLICT (singleton)
        DO UPDATE SET indexed_to = greatest(s.indexed_to, excluded.indexed_to),
                      updated_at = excluded.updated_at;
    RETURN true;
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION payq.record_audit_index(bigint, bigint, date[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payq.record_audit_index(bigint, bigint, date[], bigint[]) TO payq_recon;
GRANT SELECT ON payq.audit_index, payq.audit_index_state TO payq_reader;
