CREATE TABLE programs (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    current_version int         NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Versions are immutable: a change is a new row.
CREATE TABLE program_versions (
    program_id     uuid        NOT NULL REFERENCES programs (id),
    version        int         NOT NULL,
    effective_from timestamptz NOT NULL,
    definition     jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program_id, version)
);

CREATE TABLE participants (
    id               uuid        PRIMARY KEY,
    program_id       uuid        NOT NULL REFERENCES programs (id),
    external_user_id text        NOT NULL,
    code             text        NOT NULL UNIQUE,
    email            text,
    name             text,
    locale           text        NOT NULL DEFAULT 'en',
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, external_user_id)
);
