-- Read model of participants: who to tell, in which language. Email is kept for sending only.
CREATE TABLE participants (
    participant_id uuid PRIMARY KEY,
    program_id     uuid NOT NULL,
    email          text,
    name           text,
    locale         text NOT NULL DEFAULT 'en',
    link_url       text NOT NULL
);

-- The in-app feed. One message per event, recipient and channel, whatever the redeliveries.
CREATE TABLE notifications (
    id             uuid        PRIMARY KEY,
    event_id       uuid        NOT NULL,
    program_id     uuid        NOT NULL,
    participant_id uuid        NOT NULL,
    channel        text        NOT NULL DEFAULT 'in_app',
    kind           text        NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    read_at        timestamptz,
    UNIQUE (event_id, participant_id, channel)
);
CREATE INDEX notifications_feed_idx ON notifications (participant_id, created_at DESC);
