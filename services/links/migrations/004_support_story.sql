-- Every fraud rule that fired in a decision (referral.flagged, referral.rejected), with its
-- action, whether it only observed (shadow) and its reason: the support story shows them.
-- Keyed by (referral, decision, rule) and written with ON CONFLICT DO NOTHING, so events in
-- any order and a replay give the same rows.
CREATE TABLE rm_referral_rules (
    referral_id uuid    NOT NULL,
    decision    text    NOT NULL, -- flagged or rejected
    rule        text    NOT NULL,
    action      text    NOT NULL,
    shadow      boolean NOT NULL,
    reason      text    NOT NULL DEFAULT '',
    PRIMARY KEY (referral_id, decision, rule)
);

-- The support story finds the referral that brought a participant (as a referee).
CREATE INDEX rm_referrals_referee_idx ON rm_referrals (program_id, referee_customer_id);
