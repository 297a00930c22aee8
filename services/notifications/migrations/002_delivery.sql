-- Program versions as published (notifications reads its own section, milestones and holds).
CREATE TABLE programs (
    program_id     uuid        NOT NULL,
    version        int         NOT NULL,
    effective_from timestamptz NOT NULL,
    name           text        NOT NULL,
    definition     jsonb       NOT NULL,
    PRIMARY KEY (program_id, version)
);

ALTER TABLE participants
    ADD COLUMN variant     text,
    ADD COLUMN enrolled_at timestamptz,
    ADD COLUMN converted   int NOT NULL DEFAULT 0,
    ADD COLUMN erased_at   timestamptz;

-- Clicks per participant, learnt from link.clicked (which may arrive before the enrolment).
CREATE TABLE participant_clicks (
    participant_id uuid PRIMARY KEY,
    clicks         bigint NOT NULL DEFAULT 0
);

-- Opt-outs per participant and category ('transactional' or 'marketing'). No row: opted in.
CREATE TABLE preferences (
    participant_id uuid        NOT NULL,
    program_id     uuid        NOT NULL,
    category       text        NOT NULL CHECK (category IN ('transactional', 'marketing')),
    subscribed     boolean     NOT NULL,
    source         text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, category)
);

-- Templates a program overrides; the shipped defaults live in code. variant '' means any.
CREATE TABLE templates (
    program_id uuid        NOT NULL,
    trigger    text        NOT NULL,
    locale     text        NOT NULL,
    variant    text        NOT NULL DEFAULT '',
    subject    text        NOT NULL,
    body       text        NOT NULL,
    html       text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program_id, trigger, locale, variant)
);

-- Webhook endpoints a company registers per program (Standard Webhooks).
CREATE TABLE webhook_endpoints (
    id                   uuid        PRIMARY KEY,
    program_id           uuid        NOT NULL,
    url                  text        NOT NULL,
    event_types          text[]      NOT NULL DEFAULT '{}',
    secret               text        NOT NULL,
    previous_secret      text,
    previous_expires_at  timestamptz,
    consecutive_failures int         NOT NULL DEFAULT 0,
    disabled_at          timestamptz,
    disabled_reason      text,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_program_idx ON webhook_endpoints (program_id);

-- Every intended message, written in the consumer's transaction; the sender claims the
-- pending ones (SKIP LOCKED) and records the outcome. One per event, recipient and channel.
CREATE TABLE deliveries (
    id              uuid        PRIMARY KEY,
    event_id        uuid        NOT NULL,
    program_id      uuid        NOT NULL,
    participant_id  uuid,
    recipient_key   text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'webhook', 'in_app')),
    trigger         text        NOT NULL,
    category        text        NOT NULL,
    address         text,
    endpoint_id     uuid REFERENCES webhook_endpoints (id) ON DELETE SET NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL
                    CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    reason          text,
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (event_id, recipient_key, channel)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_program_idx ON deliveries (program_id, created_at DESC, id DESC);
CREATE INDEX deliveries_participant_idx ON deliveries (participant_id, category, created_at);

-- Every attempt at an external call, with its outcome and timing.
CREATE TABLE delivery_attempts (
    id          bigserial   PRIMARY KEY,
    delivery_id uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     int         NOT NULL,
    status      text        NOT NULL,
    error       text,
    started_at  timestamptz NOT NULL,
    duration_ms double precision NOT NULL
);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, id);

-- Reminders due later; the scheduler claims due rows (SKIP LOCKED) and decides then.
CREATE TABLE reminders (
    id             uuid        PRIMARY KEY,
    program_id     uuid        NOT NULL,
    participant_id uuid        NOT NULL,
    kind           text        NOT NULL,
    dedupe         text        NOT NULL,
    data           jsonb       NOT NULL DEFAULT '{}',
    due_at         timestamptz NOT NULL,
    done_at        timestamptz,
    outcome        text,
    UNIQUE (participant_id, kind, dedupe)
);
CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE done_at IS NULL;
