-- Read models, fed by events from links.
CREATE TABLE program_versions (
    program_id     uuid        NOT NULL,
    version        int         NOT NULL,
    effective_from timestamptz NOT NULL,
    status         text        NOT NULL,
    definition     jsonb       NOT NULL,
    PRIMARY KEY (program_id, version)
);

CREATE TABLE participants (
    participant_id   uuid PRIMARY KEY,
    program_id       uuid NOT NULL,
    code             text NOT NULL UNIQUE,
    external_user_id text NOT NULL
);

CREATE TABLE clicks (
    click_id       uuid        PRIMARY KEY,
    code           text        NOT NULL,
    program_id     uuid        NOT NULL,
    participant_id uuid        NOT NULL,
    clicked_at     timestamptz NOT NULL,
    attributable   boolean     NOT NULL,
    channel        text,
    visitor_hash   text
);
CREATE INDEX clicks_visitor_idx ON clicks (program_id, visitor_hash, clicked_at);

-- A referee is referred at most once per program: the natural key is unique.
CREATE TABLE signups (
    id             uuid        PRIMARY KEY,
    program_id     uuid        NOT NULL,
    customer_id    text        NOT NULL,
    referrer_id    uuid,
    click_id       uuid,
    attributed     boolean     NOT NULL,
    reason         text        NOT NULL,
    signed_up_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, customer_id)
);
CREATE INDEX signups_referrer_idx ON signups (referrer_id);

CREATE TABLE conversions (
    id           uuid        PRIMARY KEY,
    signup_id    uuid        NOT NULL REFERENCES signups (id),
    program_id   uuid        NOT NULL,
    order_id     text        NOT NULL,
    amount       bigint      NOT NULL CHECK (amount >= 0),
    currency     text        NOT NULL,
    converted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, order_id)
);
