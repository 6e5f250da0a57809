-- 009_result_balances: the balances of both accounts just after a posted
-- transfer, stored in its ledger row, so that the outcome event the worker
-- publishes to payq.results (README "Outcome events") is built only from
-- what the row holds: a redelivered message re-emits byte-identical events,
-- whenever and by whichever worker.
--
-- balance = credits_posted - debits_posted of the account once this
-- transfer is applied, in the committed order of the account's transfers
-- (the worker derives it from the balances its locking UPDATE returns,
-- worker/balances.h). NULL for rejected transfers and for rows booked
-- before this migration.
--
-- New nullable columns without a default change only the catalogue. The
-- constraint is added NOT VALID: every existing row holds NULL in both
-- columns, so a validating scan under this migration's ACCESS EXCLUSIVE lock
-- would prove nothing; new rows are checked.

SET LOCAL ROLE payq_owner;

ALTER TABLE payq.transfers
    ADD COLUMN debit_balance  bigint,
    ADD COLUMN credit_balance bigint,
    ADD CONSTRAINT transfers_balances_only_posted
        CHECK (status = 'posted' OR (debit_balance IS NULL AND credit_balance IS NULL)) NOT VALID;

RESET ROLE;
