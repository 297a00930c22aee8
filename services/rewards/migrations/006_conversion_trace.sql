-- The trace context of the delivery that recorded a conversion: a conversion that waits for
-- its program version is rewarded later, inside another event's processing, and its rewards'
-- events must continue the purchase's trace, not the publication's.
ALTER TABLE conversions ADD COLUMN IF NOT EXISTS traceparent text;
