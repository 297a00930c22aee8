-- Every writer inserts an entry's postings in one statement (services.rewards.ledger), so
-- the balance is checked once per statement, over the rows it inserted, instead of once per
-- posting row at commit: the same guarantee (if every statement's postings balance per entry
-- and unit, so does every entry), half as many checks on a conversion's path, and a writer
-- that splits an entry over statements is refused at once.
DROP TRIGGER ledger_postings_balanced ON ledger_postings;
DROP FUNCTION ledger_entry_balanced();

CREATE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced bigint;
BEGIN
    SELECT entry_id INTO unbalanced FROM new_postings
    GROUP BY entry_id, unit HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry % does not balance', unbalanced;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_balanced();
