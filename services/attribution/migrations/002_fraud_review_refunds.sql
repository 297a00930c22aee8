-- Referrer facts kept from participant.enrolled: the HMAC of the normalised email, never the
-- email itself, and the experiment variant.
ALTER TABLE participants ADD COLUMN email_hash text;
ALTER TABLE participants ADD COLUMN variant text;
ALTER TABLE participants ADD COLUMN erased_at timestamptz;

-- Clicks looked up per referrer and time range (funnel).
CREATE INDEX clicks_participant_idx ON clicks (participant_id, clicked_at);
CREATE INDEX clicks_program_time_idx ON clicks (program_id, clicked_at);

-- Signups: hashed fingerprints, the referral's status and its review.
--   unattributed: no referrer; active: attributed and allowed (or approved);
--   flagged: held for review; rejected: by a rule or by a reviewer.
ALTER TABLE signups ADD COLUMN status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('unattributed', 'active', 'flagged', 'rejected'));
UPDATE signups SET status = 'unattributed' WHERE NOT attributed;
ALTER TABLE signups ADD COLUMN candidate_referrer_id uuid;
ALTER TABLE signups ADD COLUMN email_hash text;
ALTER TABLE signups ADD COLUMN email_domain_hash text;
ALTER TABLE signups ADD COLUMN ip_hash text;
ALTER TABLE signups ADD COLUMN device_hash text;
ALTER TABLE signups ADD COLUMN user_agent_hash text;
ALTER TABLE signups ADD COLUMN existing_customer boolean NOT NULL DEFAULT false;
ALTER TABLE signups ADD COLUMN program_version int;
ALTER TABLE signups ADD COLUMN reviewed_at timestamptz;
ALTER TABLE signups ADD COLUMN review_note text;
CREATE INDEX signups_referrer_time_idx ON signups (referrer_id, signed_up_at);
CREATE INDEX signups_ip_time_idx ON signups (program_id, ip_hash, signed_up_at)
    WHERE ip_hash IS NOT NULL;
CREATE INDEX signups_program_time_idx ON signups (program_id, signed_up_at);
CREATE INDEX signups_flagged_idx ON signups (program_id, signed_up_at, id)
    WHERE status = 'flagged';

-- Every fraud decision with the rules that fired and their (hashed) inputs.
CREATE TABLE fraud_decisions (
    signup_id   uuid        PRIMARY KEY REFERENCES signups (id),
    program_id  uuid        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('allow', 'flag', 'reject')),
    rules       jsonb       NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now()
);

-- Conversions: whether they qualified, their sequence, and whether the event went out
-- (a flagged referral's qualifying conversions are held until it is approved).
ALTER TABLE conversions ADD COLUMN qualified boolean NOT NULL DEFAULT true;
ALTER TABLE conversions ADD COLUMN reason text NOT NULL DEFAULT 'qualified';
ALTER TABLE conversions ADD COLUMN sequence int;
ALTER TABLE conversions ADD COLUMN published boolean NOT NULL DEFAULT true;
ALTER TABLE conversions ADD COLUMN program_version int;
ALTER TABLE conversions ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0;
ALTER TABLE conversions ADD CONSTRAINT conversions_refund_bound
    CHECK (refunded_amount >= 0 AND refunded_amount <= amount);
-- Existing rows: each published in order, so they are numbered in order per referral.
UPDATE conversions c SET sequence = n.rn
FROM (SELECT id, row_number() OVER (PARTITION BY signup_id ORDER BY converted_at, id) AS rn
      FROM conversions) n
WHERE c.id = n.id;
-- One published conversion per (referral, sequence).
CREATE UNIQUE INDEX conversions_sequence_idx ON conversions (signup_id, sequence)
    WHERE sequence IS NOT NULL;
CREATE INDEX conversions_program_time_idx ON conversions (program_id, converted_at);

CREATE TABLE refunds (
    id            uuid        PRIMARY KEY,
    program_id    uuid        NOT NULL,
    refund_id     text        NOT NULL,
    conversion_id uuid        NOT NULL REFERENCES conversions (id),
    amount        bigint      NOT NULL CHECK (amount > 0),
    full_refund   boolean     NOT NULL,
    published     boolean     NOT NULL,
    refunded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, refund_id)
);
