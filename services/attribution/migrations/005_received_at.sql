-- Conversions and refunds carry the time they happened (converted_at, refunded_at: the
-- caller's occurred_at) and, now, the time attribution received them. Rows written before
-- were received when they happened.
ALTER TABLE conversions ADD COLUMN received_at timestamptz;
UPDATE conversions SET received_at = converted_at;
ALTER TABLE conversions ALTER COLUMN received_at SET NOT NULL;
ALTER TABLE conversions ALTER COLUMN received_at SET DEFAULT now();

ALTER TABLE refunds ADD COLUMN received_at timestamptz;
UPDATE refunds SET received_at = refunded_at;
ALTER TABLE refunds ALTER COLUMN received_at SET NOT NULL;
ALTER TABLE refunds ALTER COLUMN received_at SET DEFAULT now();
