-- Signups attribution holds as pending (referral.pending): waiting for the click or the code
-- they name, and what became of them. Merged from events like every rm_* table.
CREATE TABLE rm_pending_referrals (
    referral_id   uuid        PRIMARY KEY,
    program_id    uuid        NOT NULL,
    waiting_for   text        NOT NULL,
    referral_code text,
    signed_up_at  timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    resolved_at   timestamptz,
    resolution    text,
    referrer_id   uuid
);
CREATE INDEX rm_pending_referrals_program_idx ON rm_pending_referrals (program_id, signed_up_at);
CREATE INDEX rm_pending_referrals_code_idx ON rm_pending_referrals (program_id, upper(referral_code))
    WHERE resolved_at IS NULL;
