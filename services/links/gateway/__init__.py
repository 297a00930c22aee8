"""The hot path: the public redirect ``GET``/``HEAD /r/{code}``, click capture (buffer, journal,
sender), the redirect cache and the events that invalidate it, per-IP rate limits, visitor
hashes and bot detection. Runs alone as ``LINKS_ROLE=gateway`` (see ``app.py``)."""
