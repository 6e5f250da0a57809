-- 009_api_reads: GET /v1/batches/{batch_id} (producer/ledger_reads.c) finds
-- a batch's transfers by batch_id alone; transfers_by_day leads with
-- business_date and cannot serve that, so without this index every such
-- read would scan the whole ledger on the standby.
--
-- Grants: none needed. The reads run as payq_reader, which already has
-- SELECT on payq.accounts and payq.transfers (001) and nothing else it
-- could write with; the new routes read nothing more.
--
-- Building the index locks payq.transfers against writes for the time it
-- takes (this migration runs in one transaction, like every other). On a
-- large ledger create it first by hand, without blocking the workers:
--     CREATE INDEX CONCURRENTLY transfers_by_batch ON payq.transfers (batch_id);
-- and this migration then does nothing (IF NOT EXISTS).

SET LOCAL ROLE payq_owner;

CREATE INDEX IF NOT EXISTS transfers_by_batch ON payq.transfers (batch_id);

RESET ROLE;
