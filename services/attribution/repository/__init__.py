"""All SQL of attribution, by the tables it touches: ``inputs`` (what links tells us: program
versions, participants, clicks), ``referrals`` (signups, fraud decisions, conversions, refunds),
``counts`` (the review queue page and the funnel) and ``customers`` (imported existing
customers)."""
