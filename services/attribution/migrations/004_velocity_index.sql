-- The velocity rule counts a candidate referrer's signups of the last day at every signup:
-- without this index that is a scan of the program's whole day (quadratic under load).
CREATE INDEX signups_candidate_time_idx ON signups (candidate_referrer_id, signed_up_at);
