-- Which program each participant belongs to (from participant.enrolled), so a participant is
-- read only under its own program's path. Referrers of conversions received before this
-- table existed are its first rows.
CREATE TABLE participants (
    participant_id uuid PRIMARY KEY,
    program_id     uuid NOT NULL
);
INSERT INTO participants (participant_id, program_id)
SELECT DISTINCT ON (referrer_id) referrer_id, program_id FROM conversions
ORDER BY referrer_id, received_at
ON CONFLICT DO NOTHING;
