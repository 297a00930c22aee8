-- The W3C traceparent of the click, so a signup that follows it can link to its trace.
ALTER TABLE clicks ADD COLUMN traceparent text;
