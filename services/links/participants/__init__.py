"""Participants: enrolment (one use case, called by the API and by NPS promoter invitations),
their codes, share links and events, QR codes, and erasure."""
