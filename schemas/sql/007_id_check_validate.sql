-- 007_id_check_validate: marks 003's id constraints valid. VALIDATE
-- CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE, which lets the
-- workers keep inserting and updating meanwhile (and it cannot fail: the
-- replaced constraint accepted exactly the same ids).
ALTER TABLE payq.accounts VALIDATE CONSTRAINT accounts_id_check;
ALTER TABLE payq.transfers VALIDATE CONSTRAINT transfers_id_check;
