-- Rules beyond fixed amounts, holds, caps, milestones, reversals and fulfilment.

-- Conversions: the variant that selects the rule set, the purchase sequence, reversal.
ALTER TABLE conversions ADD COLUMN variant text;
ALTER TABLE conversions ADD COLUMN sequence int NOT NULL DEFAULT 1;
ALTER TABLE conversions DROP CONSTRAINT conversions_status_check;
ALTER TABLE conversions ADD CONSTRAINT conversions_status_check
    CHECK (status IN ('awaiting_program', 'rewarded', 'reversed'));
CREATE INDEX conversions_referrer_idx ON conversions (program_id, referrer_id) WHERE status = 'rewarded';

-- Rewards: which rule produced it, what was asked before caps, its state machine.
ALTER TABLE rewards ADD COLUMN rule text NOT NULL DEFAULT 'base';
ALTER TABLE rewards ADD COLUMN variant text;
ALTER TABLE rewards ADD COLUMN requested_amount bigint;
ALTER TABLE rewards ADD COLUMN perk text;
ALTER TABLE rewards ADD COLUMN fulfilment text NOT NULL DEFAULT 'ledger'
    CHECK (fulfilment IN ('ledger', 'webhook', 'coupon_pool'));
ALTER TABLE rewards ADD COLUMN available_at timestamptz;
ALTER TABLE rewards ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE rewards ADD COLUMN attempts int NOT NULL DEFAULT 0;
ALTER TABLE rewards ADD COLUMN coupon_code text;
ALTER TABLE rewards ADD COLUMN failure_reason text;
ALTER TABLE rewards ADD COLUMN reversed_at timestamptz;
ALTER TABLE rewards ADD CONSTRAINT rewards_status_check
    CHECK (status IN ('pending', 'available', 'issued', 'capped', 'reversed', 'failed'));
-- Exactly once per (conversion, rule, side) ...
ALTER TABLE rewards DROP CONSTRAINT rewards_conversion_id_side_key;
ALTER TABLE rewards ADD CONSTRAINT rewards_conversion_rule_side_key UNIQUE (conversion_id, rule, side);
-- ... and a milestone once per referrer and program, whichever conversion reached it.
CREATE UNIQUE INDEX rewards_milestone_once_idx ON rewards (program_id, referrer_id, rule)
    WHERE rule LIKE 'milestone:%';
CREATE INDEX rewards_caps_idx ON rewards (program_id, side, recipient, unit);
CREATE INDEX rewards_due_hold_idx ON rewards (available_at) WHERE status = 'pending';
CREATE INDEX rewards_due_delivery_idx ON rewards (next_attempt_at) WHERE status = 'available';
CREATE INDEX rewards_conversion_idx ON rewards (conversion_id);

-- Refunds received, including one that arrives before its conversion.
CREATE TABLE reversals (
    refund_id       uuid        PRIMARY KEY,
    conversion_id   uuid        NOT NULL,
    full_reversal   boolean     NOT NULL,
    refunded_amount bigint      NOT NULL,
    reversed_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reversals_conversion_idx ON reversals (conversion_id);

-- Ledger entries not tied to one reward (redemptions).
ALTER TABLE ledger_entries ALTER COLUMN reward_id DROP NOT NULL;
ALTER TABLE ledger_entries ADD COLUMN redemption_id uuid UNIQUE;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_reference_check
    CHECK (reward_id IS NOT NULL OR redemption_id IS NOT NULL);

CREATE TABLE redemptions (
    id             uuid        PRIMARY KEY,
    program_id     uuid        NOT NULL,
    participant_id uuid        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    unit           text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Coupon pools: a code is handed out at most once (claimed by one reward).
CREATE TABLE coupon_codes (
    id          bigserial   PRIMARY KEY,
    program_id  uuid        NOT NULL,
    code        text        NOT NULL,
    reward_id   uuid        UNIQUE REFERENCES rewards (id),
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    claimed_at  timestamptz,
    UNIQUE (program_id, code)
);
CREATE INDEX coupon_codes_free_idx ON coupon_codes (program_id, id) WHERE reward_id IS NULL;

-- Per-program secrets for signing webhook fulfilment calls (never published on the bus).
CREATE TABLE program_secrets (
    program_id     uuid PRIMARY KEY,
    webhook_secret text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Participants erased: their referees' customer ids are hashed and stay hashed.
CREATE TABLE erased_participants (
    participant_id uuid        PRIMARY KEY,
    erased_at      timestamptz NOT NULL
);
