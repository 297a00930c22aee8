-- The ledger statement, manual adjustments, and a participant's referee-side rewards.

-- The transaction that wrote each entry: a statement lists only entries of transactions that
-- had all ended when its first page was read, so its pages never change (an id allocated by a
-- transaction still in flight can commit after a higher one was read).
ALTER TABLE ledger_entries ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
-- Who made a manual entry (the acting key: ``admin`` or ``key:<key_id>``).
ALTER TABLE ledger_entries ADD COLUMN actor text;

-- Manual adjustments by an operator: a goodwill grant or a correction (either sign), with
-- the reason given and the acting key. ``reference`` is the client's own id (idempotent).
CREATE TABLE adjustments (
    id             uuid        PRIMARY KEY,
    program_id     uuid        NOT NULL,
    participant_id uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('goodwill', 'correction')),
    amount         bigint      NOT NULL CHECK (amount <> 0),
    unit           text        NOT NULL,
    reason         text        NOT NULL,
    actor          text        NOT NULL,
    reference      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, reference)
);
CREATE INDEX adjustments_participant_idx ON adjustments (program_id, participant_id);

ALTER TABLE ledger_entries ADD COLUMN adjustment_id uuid UNIQUE REFERENCES adjustments (id);
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_reference_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_reference_check
    CHECK (reward_id IS NOT NULL OR redemption_id IS NOT NULL OR adjustment_id IS NOT NULL);

-- A participant is also a referee when someone referred them: their customer id (the
-- enrolment's external user id) as a SHA-256, never in clear, matched against referee rewards
-- (in clear, or ``erased:<sha256>`` once their referrer was erased).
ALTER TABLE participants ADD COLUMN customer_hash text;
-- Immutable (so it can be indexed): the database encoding never changes under it.
CREATE FUNCTION rewards_customer_hash(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') $$;
CREATE INDEX rewards_referee_hash_idx ON rewards (program_id, rewards_customer_hash(recipient))
    WHERE side = 'referee';
