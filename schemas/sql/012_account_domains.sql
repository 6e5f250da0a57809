-- 012_account_domains: an account's id and currency are checked when they
-- are written, not again on every balance update. PostgreSQL re-checks
-- every CHECK constraint of a row on UPDATE, whichever columns changed, so
-- each batch's balance UPDATE ran both regular expressions (the id's and
-- the currency's) once more for every account row it moved, for columns
-- that never change: in perf on the worker's backend during a drain,
-- textregexeq fell from 4.9% to 1.2% of its CPU and ExecConstraints from
-- 9.6% to 4.0% with this change (issue 16); alternating with the table's
-- CHECKs put back, the balance UPDATE took 0.84 of its time. A domain's
-- constraint is checked when a value is converted to the domain: on
-- INSERT, and on an UPDATE that sets the column, never on one that leaves
-- it alone. The accepted values are the same (the
-- domains carry the constraints 001 and 006 put on the table), and a value
-- they refuse is still a check_violation.
--
-- Order: the columns change type while the domains have no constraint
-- (binary-coercible, so no table rewrite and accounts_pkey is kept), then
-- each domain's constraint is added NOT VALID and validated (a scan, no
-- rewrite), then the table's own two constraints are dropped.
SET LOCAL ROLE payq_owner;

CREATE DOMAIN payq.account_id AS text COLLATE "C";
CREATE DOMAIN payq.currency_code AS char(3);

ALTER TABLE payq.accounts
    ALTER COLUMN id TYPE payq.account_id,
    ALTER COLUMN currency TYPE payq.currency_code;

ALTER DOMAIN payq.account_id ADD CONSTRAINT account_id_check
    CHECK (length(VALUE) <= 64 AND VALUE ~ '^[A-Za-z0-9._:-]+$') NOT VALID;
ALTER DOMAIN payq.currency_code ADD CONSTRAINT currency_code_check
    CHECK (VALUE ~ '^[A-Z]{3}$') NOT VALID;
ALTER DOMAIN payq.account_id VALIDATE CONSTRAINT account_id_check;
ALTER DOMAIN payq.currency_code VALIDATE CONSTRAINT currency_code_check;

ALTER TABLE payq.accounts DROP CONSTRAINT accounts_id_check,
    DROP CONSTRAINT accounts_currency_check;

RESET ROLE;
