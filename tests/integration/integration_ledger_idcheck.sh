#!/usr/bin/env bash
# integration_ledger_idcheck: the cheaper id CHECK constraints of
# schemas/sql/006_id_check_cheaper.sql accept exactly the ids the original
# `^[A-Za-z0-9._:-]{1,64}$` accepted:
#  1. as expressions, on edge cases (lengths 0, 1, 63, 64, 65, 66; every code
#     point 1..1000 alone and between two letters; a trailing or leading
#     newline; non-ASCII letters that make 64 characters more than 64 bytes)
#     and 50,000 random strings over allowed and refused characters;
#  2. as the constraints on payq.accounts and payq.transfers: each edge case
#     is inserted (in a transaction that rolls back) and refused by the
#     CHECK exactly when the original pattern refuses it;
#  3. both constraints are the new ones and valid: the transfer id's on the
#     table, the account id's on the domain payq.account_id
#     (schemas/sql/012_account_domains.sql);
#  4. the account domains hold wherever a value is written: an account
#     opened or changed to a bad id or currency is refused (check_violation),
#     and payq.accounts has no CHECK constraint of its own on either column
#     (so a balance update, which writes neither, evaluates neither).
source "$(dirname "$0")/lib/common.sh"

OLD="'^[A-Za-z0-9._:-]{1,64}\$'"
# The edge cases, one per row, as a SQL query (column s, collation "C" as the id columns).
EDGES="SELECT s COLLATE \"C\" AS s FROM (
    SELECT '' UNION ALL SELECT 'a' UNION ALL SELECT repeat('a', 63) UNION ALL SELECT repeat('a', 64)
    UNION ALL SELECT repeat('a', 65) UNION ALL SELECT repeat('Z9._:-', 11)
    UNION ALL SELECT repeat('Az09.', 12) || '_:-:' UNION ALL SELECT repeat('Az09.', 12) || '_:-:x'
    UNION ALL SELECT E'abc\\n' UNION ALL SELECT E'\\nabc' UNION ALL SELECT repeat('a', 63) || E'\\n'
    UNION ALL SELECT 'ab c' UNION ALL SELECT 'a/b' UNION ALL SELECT 'a[b]' UNION ALL SELECT 'a^b'
    UNION ALL SELECT 'a\\b' UNION ALL SELECT 'é' UNION ALL SELECT repeat('é', 32)
    UNION ALL SELECT repeat('a', 63) || 'é' UNION ALL SELECT repeat('a', 60) || 'ééé'
    UNION ALL SELECT chr(i) FROM generate_series(1, 1000) i
    UNION ALL SELECT 'a' || chr(i) || 'b' FROM generate_series(1, 1000) i
    UNION ALL SELECT chr(i) FROM generate_series(65000, 65600) i) e(s)"
RANDS="SELECT coalesce((SELECT string_agg(substr(E'Aa0Zz9._:-/ é\\n[]^\\\\\\t', (random() * 20)::int + 1, 1), '')
                FROM generate_series(1, (random() * 70)::int + g * 0)), '') COLLATE \"C\" AS s
         FROM generate_series(1, 50000) g"
NEW="length(s) <= 64 AND s ~ '^[A-Za-z0-9._:-]+\$'"

check "the new expression agrees with the old pattern on every edge case" "0" \
    "$(q "SELECT count(*) FROM ($EDGES) c WHERE (s ~ $OLD) IS DISTINCT FROM ($NEW)")"
check "the edge cases include accepted and refused ids" "t" \
    "$(q "SELECT count(*) FILTER (WHERE s ~ $OLD) >= 60 AND count(*) FILTER (WHERE s !~ $OLD) >= 1900 FROM ($EDGES) c")"
check "the new expression agrees with the old pattern on 50,000 random strings" "0" \
    "$(q "SELECT count(*) FROM ($RANDS) c WHERE (s ~ $OLD) IS DISTINCT FROM ($NEW)")"

# Against the tables: every edge case as an account id and as a transfer id,
# each in a subtransaction; count where the table and the old pattern differ.
mismatches=$(psql "$PAYQ_PG_PRIMARY" -X -qAt -v ON_ERROR_STOP=1 <<SQL
BEGIN;
CREATE TEMP TABLE idcheck_out (tbl text, s text, accepted bool);
DO \$\$
DECLARE c text; ok bool;
BEGIN
    FOR c IN $EDGES LOOP
        BEGIN
            INSERT INTO payq.accounts (id, currency) VALUES (c, 'EUR') ON CONFLICT DO NOTHING;
            ok := true;
        EXCEPTION WHEN check_violation THEN ok := false;
        END;
        INSERT INTO idcheck_out VALUES ('accounts', c, ok);
        BEGIN
            INSERT INTO payq.transfers (id, debit_account, credit_account, amount, currency,
                business_date, status, payload_sha256)
            VALUES (c, 'x', 'y', 1, 'EUR', current_date, 'posted', sha256('x'))
            ON CONFLICT DO NOTHING;
            ok := true;
        EXCEPTION WHEN check_violation THEN ok := false;
        END;
        INSERT INTO idcheck_out VALUES ('transfers', c, ok);
    END LOOP;
END
\$\$;
SELECT count(*) FILTER (WHERE tbl = 'accounts' AND accepted IS DISTINCT FROM (s COLLATE "C" ~ $OLD))
    || '|' || count(*) FILTER (WHERE tbl = 'transfers' AND accepted IS DISTINCT FROM (s COLLATE "C" ~ $OLD))
    || '|' || count(*) FILTER (WHERE accepted)
FROM idcheck_out;
ROLLBACK;
SQL
)
accepted=$(q "SELECT 2 * count(*) FROM ($EDGES) c WHERE s ~ $OLD")
check "payq.accounts and payq.transfers accept exactly what the old pattern accepts" "0|0|$accepted" \
    "$mismatches"
check "both id constraints are the cheaper ones, and valid" \
    "account_id_check|true|true transfers_id_check|true|true" \
    "$(q "SELECT string_agg(conname || '|' || convalidated || '|' ||
                 (pg_get_constraintdef(oid) ~ 'length\(.*(id|VALUE).*\) <= 64'), ' ' ORDER BY conname)
          FROM pg_constraint WHERE conname IN ('account_id_check', 'transfers_id_check')")"

# 4. Each statement in a transaction that rolls back; "refused" when it
# raised check_violation.
refused() {
    psql "$PAYQ_PG_PRIMARY" -X -qAt -v ON_ERROR_STOP=1 <<SQL
BEGIN;
INSERT INTO payq.accounts (id, currency) VALUES ('idcheck-$RUN_ID', 'EUR');
DO \$\$
BEGIN
    $1;
    RAISE NOTICE 'accepted';
EXCEPTION WHEN check_violation THEN RAISE NOTICE 'refused';
END
\$\$;
ROLLBACK;
SQL
}
for stmt in "INSERT INTO payq.accounts (id, currency) VALUES ('idcheck $RUN_ID', 'EUR')" \
    "INSERT INTO payq.accounts (id, currency) VALUES ('idcheck2-$RUN_ID', 'eur')" \
    "INSERT INTO payq.accounts (id, currency) VALUES ('idcheck3-$RUN_ID', 'EU')" \
    "UPDATE payq.accounts SET id = 'idcheck/$RUN_ID' WHERE id = 'idcheck-$RUN_ID'" \
    "UPDATE payq.accounts SET currency = 'E1R' WHERE id = 'idcheck-$RUN_ID'"; do
    check "refused: $stmt" "NOTICE:  refused" "$(refused "$stmt" 2>&1 | grep -o 'NOTICE:  [a-z]*')"
done
check "a balance update of the same account is accepted" "NOTICE:  accepted" \
    "$(refused "UPDATE payq.accounts SET credits_posted = credits_posted + 1 WHERE id = 'idcheck-$RUN_ID'" 2>&1 |
        grep -o 'NOTICE:  [a-z]*')"
check "payq.accounts' id and currency are the domains" "payq.account_id payq.currency_code" \
    "$(q "SELECT string_agg(format_type(atttypid, NULL), ' ' ORDER BY attnum) FROM pg_attribute
          WHERE attrelid = 'payq.accounts'::regclass AND attname IN ('id', 'currency')")"
check "payq.accounts has no CHECK of its own on id or currency" "0" \
    "$(q "SELECT count(*) FROM pg_constraint WHERE conrelid = 'payq.accounts'::regclass
          AND contype = 'c' AND (pg_get_constraintdef(oid) ~ '\m(id|currency)\M')")"
finish
