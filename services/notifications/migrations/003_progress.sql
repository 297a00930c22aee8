-- Converted referrals per referrer, counted from referral.converted whether or not the
-- enrolment was handled first (topics are not ordered with each other).
CREATE TABLE participant_progress (
    participant_id uuid PRIMARY KEY,
    program_id     uuid NOT NULL,
    converted      int  NOT NULL DEFAULT 0
);
INSERT INTO participant_progress (participant_id, program_id, converted)
SELECT participant_id, program_id, converted FROM participants WHERE converted > 0;
ALTER TABLE participants DROP COLUMN converted;
