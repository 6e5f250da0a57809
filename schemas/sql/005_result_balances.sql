-- 005_result_balances: the balances of both accounts just after a posted
-- transfer, stored in its ledger row, so that the outcome event the worker
-- publishes to payq.results (README "Outcome events") is built only from
-- what the row holds: a redelivered message re-emits byte-identical events,
-- whenever and by whichever worker.
--
-- balance = credits_posted - debits_posted of the account once this
-- transfer is applied, in the order the batch applied its transfers. NULL
-- for rejected transfers and for rows booked before this migration.

SET LOCAL ROLE payq_owner;

ALTER TABLE payq.transfers
    ADD COLUMN debit_balance  bigint,
    ADD COLUMN credit_balance bigint,
    ADD CONSTRAINT transfers_balances_only_posted
        CHECK (status = 'posted' OR (debit_balance IS NULL AND credit_balance IS NULL));

RESET ROLE;
