"""Bulk imports from CSV or JSON Lines, shared by the services that take them: the streamed
row reader, the import job (upload spooled to Postgres, processed in batches by a background
runner any replica can take over), its progress and its per-row error report."""
