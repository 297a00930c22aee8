-- Stripe events in: endpoints (one program each) that Stripe posts webhook events to, the
-- signing secrets they verify with (at most two at once, for rotation), every event received
-- (de-duplicated by Stripe's event id), and the Stripe payments a conversion came from (so a
-- charge's refund finds its conversion).

-- The Stripe customer id the company recorded at signup: how an invoice finds its referee
-- when it carries no customer id of the company's own.
ALTER TABLE signups ADD COLUMN billing_customer_id text;
CREATE INDEX signups_billing_customer_idx ON signups (program_id, billing_customer_id)
    WHERE billing_customer_id IS NOT NULL;

CREATE TABLE stripe_endpoints (
    id                  uuid        PRIMARY KEY,
    program_id          uuid        NOT NULL,
    -- Where the company's customer id is read: the Checkout Session's client_reference_id
    -- and/or this metadata key (null: metadata is not read).
    client_reference_id boolean     NOT NULL,
    metadata_key        text,
    created_at          timestamptz NOT NULL
);
CREATE INDEX stripe_endpoints_program_idx ON stripe_endpoints (program_id, created_at);

-- Stored as given: verifying a signature needs the secret itself. Only the fingerprint
-- (a SHA-256 prefix) is ever shown.
CREATE TABLE stripe_endpoint_secrets (
    endpoint_id uuid        NOT NULL REFERENCES stripe_endpoints (id),
    fingerprint text        NOT NULL,
    secret      text        NOT NULL,
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (endpoint_id, fingerprint)
);

CREATE TABLE stripe_events (
    endpoint_id uuid        NOT NULL REFERENCES stripe_endpoints (id),
    event_id    text        NOT NULL,
    type        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('applied', 'ignored', 'unmatched', 'failed')),
    reason      text        NOT NULL,
    order_id    text,
    -- Kept while the event may be applied again (unmatched or failed), dropped once applied.
    payload     jsonb,
    received_at timestamptz NOT NULL,
    applied_at  timestamptz,
    attempts    int         NOT NULL DEFAULT 1,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX stripe_events_status_idx ON stripe_events (endpoint_id, status, received_at);

-- Invoice, PaymentIntent and Charge ids of a converted payment -> the conversion's order id.
CREATE TABLE stripe_payments (
    program_id uuid NOT NULL,
    stripe_id  text NOT NULL,
    order_id   text NOT NULL,
    PRIMARY KEY (program_id, stripe_id)
);
