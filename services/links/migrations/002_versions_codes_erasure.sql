-- Pause and resume are versions too: each version records the status it puts in force.
ALTER TABLE program_versions
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused'));

-- Experiments, vanity codes, erasure.
ALTER TABLE participants
    ADD COLUMN variant   text,
    ADD COLUMN vanity    boolean     NOT NULL DEFAULT false,
    ADD COLUMN erased_at timestamptz;

-- Codes are unique whatever their case ("Alice" and "alice" are the same link).
CREATE UNIQUE INDEX participants_code_ci_idx ON participants (lower(code));
