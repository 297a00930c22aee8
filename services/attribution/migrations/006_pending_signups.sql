-- Pending attribution: a signup naming a click or a code attribution has not heard of yet
-- waits for it (status 'pending') until pending_until, then is given up with a reason.
ALTER TABLE signups DROP CONSTRAINT signups_status_check;
ALTER TABLE signups ADD CONSTRAINT signups_status_check
    CHECK (status IN ('pending', 'unattributed', 'active', 'flagged', 'rejected'));
-- signed_up_at is when the signup happened (the caller's occurred_at); received_at is when it
-- reached us; decided_at is when attribution decided it (later than received_at if pending).
ALTER TABLE signups ADD COLUMN received_at timestamptz;
UPDATE signups SET received_at = signed_up_at;
ALTER TABLE signups ALTER COLUMN received_at SET NOT NULL;
ALTER TABLE signups ALTER COLUMN received_at SET DEFAULT now();
ALTER TABLE signups ADD COLUMN decided_at timestamptz;
UPDATE signups SET decided_at = signed_up_at;
-- What a late decision needs that is not kept otherwise: the code as typed and whether the
-- email's domain is disposable (judged on receipt, the email itself is never stored).
ALTER TABLE signups ADD COLUMN referral_code text;
ALTER TABLE signups ADD COLUMN email_disposable boolean NOT NULL DEFAULT false;
ALTER TABLE signups ADD COLUMN pending_until timestamptz;
CREATE INDEX signups_pending_click_idx ON signups (click_id) WHERE status = 'pending';
CREATE INDEX signups_pending_code_idx ON signups (program_id, upper(referral_code))
    WHERE status = 'pending';
CREATE INDEX signups_pending_due_idx ON signups (pending_until) WHERE status = 'pending';

-- Purchases and refunds of a customer whose signup is pending: kept as received and applied
-- in order once the signup is decided (outcome says how that went).
CREATE TABLE held_tracking (
    id          bigserial   PRIMARY KEY,
    program_id  uuid        NOT NULL,
    signup_id   uuid        NOT NULL REFERENCES signups (id),
    kind        text        NOT NULL CHECK (kind IN ('conversion', 'refund')),
    natural_key text        NOT NULL,
    order_id    text        NOT NULL,
    body        jsonb       NOT NULL,
    received_at timestamptz NOT NULL,
    applied_at  timestamptz,
    outcome     text,
    UNIQUE (program_id, kind, natural_key)
);
CREATE INDEX held_tracking_signup_idx ON held_tracking (signup_id, id);
CREATE INDEX held_tracking_order_idx ON held_tracking (program_id, order_id);
