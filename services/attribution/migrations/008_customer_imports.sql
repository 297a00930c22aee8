-- Bulk imports (shared/imports): the job, its spooled rows and its per-row errors. The job's
-- state is here so that any replica answers its progress and takes over an orphaned run.
CREATE TABLE imports (
    id              uuid        PRIMARY KEY,
    program_id      uuid        NOT NULL,
    kind            text        NOT NULL,
    format          text        NOT NULL CHECK (format IN ('csv', 'jsonl')),
    status          text        NOT NULL
        CHECK (status IN ('receiving', 'queued', 'running', 'completed', 'failed')),
    idempotency_key text,
    columns         text[]      NOT NULL, -- the order of import_rows.values
    ignored_columns text[]      NOT NULL DEFAULT '{}',
    rows_received   bigint      NOT NULL DEFAULT 0,
    rows_total      bigint,               -- known once the upload is spooled
    rows_done       bigint      NOT NULL DEFAULT 0,
    rows_created    bigint      NOT NULL DEFAULT 0,
    rows_existing   bigint      NOT NULL DEFAULT 0,
    rows_failed     bigint      NOT NULL DEFAULT 0,
    processed_upto  bigint      NOT NULL DEFAULT 0, -- the last spooled row applied
    failure         text,
    lease_until     timestamptz,          -- a running job's runner renews it every batch
    created_at      timestamptz NOT NULL DEFAULT now(),
    received_at     timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, kind, idempotency_key)
);
CREATE INDEX imports_pending_idx ON imports (created_at) WHERE status IN ('queued', 'running');

-- Valid rows of an upload waiting for the runner; deleted as they are applied.
CREATE TABLE import_rows (
    import_id uuid   NOT NULL,
    row       bigint NOT NULL,
    "values"  text[] NOT NULL,
    PRIMARY KEY (import_id, row)
);

CREATE TABLE import_errors (
    id        bigserial PRIMARY KEY,
    import_id uuid      NOT NULL,
    row       bigint    NOT NULL,
    field     text,
    message   text      NOT NULL
);
CREATE INDEX import_errors_import_idx ON import_errors (import_id, row, id);

-- Customers the company already had, imported so that a later signup of one is an existing
-- customer (never referred). Only a keyed hash of the customer id is kept (pii.py).
CREATE TABLE imported_customers (
    program_id    uuid        NOT NULL,
    customer_hash text        NOT NULL,
    import_id     uuid        NOT NULL,
    imported_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program_id, customer_hash)
);
