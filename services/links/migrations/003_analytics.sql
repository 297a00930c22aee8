-- Participants: the leaderboard opt-in and the secret token of their public scoreboard.
-- Existing rows get a token from two random UUIDs (244 random bits); new ones get 32 random
-- bytes from the application (secrets.token_urlsafe).
ALTER TABLE participants
    ADD COLUMN leaderboard_opt_in boolean NOT NULL DEFAULT false,
    ADD COLUMN scoreboard_token   text    NOT NULL
        DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
CREATE UNIQUE INDEX participants_scoreboard_token_idx ON participants (scoreboard_token);

-- NPS answers (links' own data, written by the API, not derived from events).
CREATE TABLE nps_responses (
    id                     uuid        PRIMARY KEY,
    program_id             uuid        NOT NULL REFERENCES programs (id),
    customer_id            text        NOT NULL,
    score                  smallint    NOT NULL CHECK (score BETWEEN 0 AND 10),
    answered_at            timestamptz NOT NULL,
    invited_participant_id uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    -- The natural key: the same answer sent twice is one answer.
    UNIQUE (program_id, customer_id, answered_at)
);
CREATE INDEX nps_responses_program_idx ON nps_responses (program_id, answered_at);

-- Read models (rm_*), fed by events only. Every column is a function of event fields (never
-- now() or arrival order): each handler merges its facts with commutative operations
-- (least/greatest/coalesce/sums), so the topics replayed into an empty database in any
-- interleaving give the same rows. No foreign keys: events of one entity arrive in any order.
CREATE TABLE rm_participants (
    participant_id uuid        PRIMARY KEY,
    program_id     uuid        NOT NULL,
    variant        text,
    enrolled_at    timestamptz,
    erased_at      timestamptz
);
CREATE INDEX rm_participants_program_idx ON rm_participants (program_id, enrolled_at);

CREATE TABLE rm_shares (
    share_id       uuid        PRIMARY KEY,
    program_id     uuid        NOT NULL,
    participant_id uuid        NOT NULL,
    channel        text        NOT NULL,
    shared_at      timestamptz NOT NULL
);
CREATE INDEX rm_shares_program_idx ON rm_shares (program_id, shared_at);
CREATE INDEX rm_shares_participant_idx ON rm_shares (participant_id);

-- Clicks are counted, not stored: one row per participant and UTC day.
CREATE TABLE rm_clicks_daily (
    participant_id uuid   NOT NULL,
    day            date   NOT NULL,
    program_id     uuid   NOT NULL,
    clicks         bigint NOT NULL DEFAULT 0, -- every redirect, bots and prefetches included
    attributable   bigint NOT NULL DEFAULT 0, -- by a person (not a bot, prefetch or HEAD)
    invites        bigint NOT NULL DEFAULT 0, -- attributable and the visitor's first in the hour
    PRIMARY KEY (participant_id, day)
);
CREATE INDEX rm_clicks_daily_program_idx ON rm_clicks_daily (program_id, day);

CREATE TABLE rm_referrals (
    referral_id         uuid        PRIMARY KEY,
    program_id          uuid        NOT NULL,
    referrer_id         uuid        NOT NULL,
    -- The referee's id at the company (a customer id, never an email); NULL once the
    -- referrer is erased.
    referee_customer_id text,
    variant             text,
    signed_up_at        timestamptz,
    flagged_at          timestamptz,
    flag_rules          text[]      NOT NULL DEFAULT '{}',
    rejected_at         timestamptz,
    reject_rules        text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX rm_referrals_program_idx ON rm_referrals (program_id);
CREATE INDEX rm_referrals_referrer_idx ON rm_referrals (referrer_id);

CREATE TABLE rm_conversions (
    conversion_id  uuid        PRIMARY KEY,
    referral_id    uuid        NOT NULL,
    program_id     uuid        NOT NULL,
    referrer_id    uuid        NOT NULL,
    order_amount   bigint,
    currency       text,
    converted_at   timestamptz, -- NULL while only a refund has arrived
    program_version int,
    variant        text,
    sequence       int         NOT NULL DEFAULT 1,
    refunded       bigint      NOT NULL DEFAULT 0,
    reversed_at    timestamptz -- the first full refund
);
CREATE INDEX rm_conversions_program_idx ON rm_conversions (program_id, converted_at);
CREATE INDEX rm_conversions_referral_idx ON rm_conversions (referral_id);

CREATE TABLE rm_rewards (
    reward_id       uuid        PRIMARY KEY,
    program_id      uuid        NOT NULL,
    referrer_id     uuid        NOT NULL,
    conversion_id   uuid,
    referral_id     uuid,
    program_version int,
    side            text        NOT NULL,
    -- The participant id (referrer side) or the referee's customer id; NULL for a referee
    -- once the referrer is erased.
    recipient       text,
    unit            text        NOT NULL,
    amount          bigint,      -- as created
    initial_status  text,        -- pending, available, issued or capped
    created_at      timestamptz,
    available_at    timestamptz,
    issued_amount   bigint,
    issued_at       timestamptz,
    reversed_amount bigint,
    reversal_kind   text,
    reversed_at     timestamptz,
    failure_reason  text,
    failed_at       timestamptz,
    variant         text,
    rule            text,
    perk            text
);
CREATE INDEX rm_rewards_program_idx ON rm_rewards (program_id);
CREATE INDEX rm_rewards_referrer_idx ON rm_rewards (referrer_id);

CREATE TABLE rm_milestones (
    program_id  uuid        NOT NULL,
    referrer_id uuid        NOT NULL,
    threshold   int         NOT NULL,
    reached_at  timestamptz NOT NULL,
    reward_id   uuid,
    perk        text,
    amount      bigint,
    unit        text,
    PRIMARY KEY (program_id, referrer_id, threshold)
);

-- A referral's state, from its facts: rejected, converted (a first purchase not fully
-- refunded), reversed (it was, fully refunded), in review (flagged), else signed up.
CREATE VIEW rm_referral_states AS
SELECT r.*, c.converted_at, c.reversed_at,
       CASE
           WHEN r.rejected_at IS NOT NULL THEN 'rejected'
           WHEN c.converted_at IS NOT NULL THEN 'converted'
           WHEN c.reversed_at IS NOT NULL THEN 'reversed'
           WHEN r.flagged_at IS NOT NULL THEN 'pending_review'
           ELSE 'signed_up'
       END AS status,
       coalesce(
           CASE
               WHEN r.rejected_at IS NOT NULL THEN r.rejected_at
               WHEN c.converted_at IS NOT NULL THEN c.converted_at
               WHEN c.reversed_at IS NOT NULL THEN c.reversed_at
               WHEN r.flagged_at IS NOT NULL THEN r.flagged_at
           END,
           r.signed_up_at, r.flagged_at, r.rejected_at
       ) AS status_at
FROM rm_referrals r
LEFT JOIN LATERAL (
    SELECT min(x.converted_at) FILTER (WHERE x.reversed_at IS NULL) AS converted_at,
           min(x.reversed_at) AS reversed_at
    FROM rm_conversions x
    WHERE x.referral_id = r.referral_id AND x.sequence = 1 AND x.converted_at IS NOT NULL
) c ON true;

-- A reward's state now. Only "pending" versus "available" depends on the clock (a hold ends
-- without an event); everything else is a fact.
CREATE VIEW rm_reward_states AS
SELECT w.*,
       CASE
           WHEN w.reversed_at IS NOT NULL THEN 'reversed'
           WHEN w.issued_at IS NOT NULL OR w.initial_status = 'issued' THEN 'issued'
           WHEN w.failed_at IS NOT NULL THEN 'failed'
           WHEN w.initial_status = 'capped' THEN 'capped'
           WHEN w.initial_status = 'available' OR w.available_at <= now() THEN 'available'
           ELSE 'pending'
       END AS state,
       coalesce(w.issued_amount, w.amount, 0) AS value,
       coalesce(w.issued_at, CASE WHEN w.initial_status = 'issued' THEN w.created_at END)
           AS issued_time
FROM rm_rewards w;
