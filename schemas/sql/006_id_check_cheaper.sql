-- 006_id_check_cheaper: the same ids, accepted for a fraction of the CPU.
-- `id ~ '^[A-Za-z0-9._:-]{1,64}$'` compiles the bounded repetition into a
-- large automaton: ~7 us per evaluation, on every inserted transfer and on
-- every account row a batch UPDATEs (PostgreSQL re-checks every CHECK of a
-- row it updates): 27-29% of the backend's CPU in a drain (issue #16).
-- A length bound plus the unbounded class accepts exactly the same strings
-- (`+` is "one or more"; length() counts characters as {1,64} does; every
-- accepted character is one byte) at ~1.7 us, and the length test runs first.
-- tests/integration/integration_ledger_idcheck.sh proves the equivalence on
-- edge cases and random strings, against these tables.
--
-- The new constraints are added NOT VALID (no scan under this migration's
-- ACCESS EXCLUSIVE lock: the old constraint already held for every row);
-- 004 validates them under a lock that lets the workers keep writing.
ALTER TABLE payq.accounts DROP CONSTRAINT accounts_id_check,
    ADD CONSTRAINT accounts_id_check
        CHECK (length(id) <= 64 AND id ~ '^[A-Za-z0-9._:-]+$') NOT VALID;
ALTER TABLE payq.transfers DROP CONSTRAINT transfers_id_check,
    ADD CONSTRAINT transfers_id_check
        CHECK (length(id) <= 64 AND id ~ '^[A-Za-z0-9._:-]+$') NOT VALID;
