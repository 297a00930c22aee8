-- A milestone taken back by refunds (status reversed) can be reached again: at most one
-- milestone reward per referrer and threshold that is not reversed.
DROP INDEX rewards_milestone_once_idx;
CREATE UNIQUE INDEX rewards_milestone_once_idx ON rewards (program_id, referrer_id, rule)
    WHERE rule LIKE 'milestone:%' AND status <> 'reversed';
