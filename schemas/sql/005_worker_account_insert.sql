-- 005_worker_account_insert: payq_worker opens accounts with their identity
-- only (id, currency, flags), the columns worker/ledger.c inserts. Before,
-- INSERT on the whole table let the worker's role create an account with
-- any opening balance (debits_posted/credits_posted) or a forged created_at:
-- money invented outside the double-entry ledger. Now every account starts
-- at 0/0 with the server's clock, and balances move only through the
-- UPDATE of the two balance columns that posts transfers.
REVOKE INSERT ON payq.accounts FROM payq_worker;
GRANT INSERT (id, currency, flags) ON payq.accounts TO payq_worker;
