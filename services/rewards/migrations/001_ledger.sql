CREATE TABLE program_versions (
    program_id     uuid        NOT NULL,
    version        int         NOT NULL,
    effective_from timestamptz NOT NULL,
    definition     jsonb       NOT NULL,
    PRIMARY KEY (program_id, version)
);

-- Every conversion received, so one that arrives before its program is not lost.
CREATE TABLE conversions (
    conversion_id       uuid        PRIMARY KEY,
    referral_id         uuid        NOT NULL,
    program_id          uuid        NOT NULL,
    referrer_id         uuid        NOT NULL,
    referee_customer_id text        NOT NULL,
    order_id            text        NOT NULL,
    amount              bigint      NOT NULL,
    currency            text        NOT NULL,
    converted_at        timestamptz NOT NULL,
    program_version     int,
    status              text        NOT NULL CHECK (status IN ('awaiting_program', 'rewarded')),
    received_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversions_awaiting_idx ON conversions (program_id) WHERE status = 'awaiting_program';

CREATE TABLE rewards (
    id              uuid        PRIMARY KEY,
    conversion_id   uuid        NOT NULL REFERENCES conversions (conversion_id),
    program_id      uuid        NOT NULL,
    program_version int         NOT NULL,
    referrer_id     uuid        NOT NULL,
    side            text        NOT NULL CHECK (side IN ('referrer', 'referee')),
    recipient       text        NOT NULL,
    amount          bigint      NOT NULL CHECK (amount >= 0),
    unit            text        NOT NULL,
    status          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    issued_at       timestamptz,
    -- Exactly once: one reward per conversion and side, whatever the code does.
    UNIQUE (conversion_id, side)
);
CREATE INDEX rewards_recipient_idx ON rewards (recipient);

-- Double-entry, append-only ledger. A balance is a sum of postings.
CREATE TABLE ledger_entries (
    id         bigserial   PRIMARY KEY,
    reward_id  uuid        NOT NULL REFERENCES rewards (id),
    kind       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reward_id, kind)
);

CREATE TABLE ledger_postings (
    entry_id bigint NOT NULL REFERENCES ledger_entries (id),
    account  text   NOT NULL,
    unit     text   NOT NULL,
    -- Signed: debits positive, credits negative. Each entry sums to zero per unit.
    amount   bigint NOT NULL,
    PRIMARY KEY (entry_id, account, unit)
);
CREATE INDEX ledger_postings_account_idx ON ledger_postings (account, unit);

CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM ledger_postings WHERE entry_id = NEW.entry_id
        GROUP BY unit HAVING sum(amount) <> 0
    ) THEN
        RAISE EXCEPTION 'ledger entry % does not balance', NEW.entry_id;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
