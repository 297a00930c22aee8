from __future__ import annotations

from pydantic import SecretStr

from shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    port: int = 8004

    # Where links in messages (unsubscribe) point; default: this process's own address.
    notifications_public_url: str | None = None
    # HMAC key of unsubscribe links; default: derived from the admin key.
    unsubscribe_secret: SecretStr | None = None

    smtp_host: str | None = None  # no host: emails wait in the delivery log, never lost
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout_s: float = 10.0
    smtp_connections: int = 4
    notify_mail_from: str = "Referrals <no-reply@referral.invalid>"

    notify_webhook_timeout_s: float = 10.0
    # Seconds between attempts of one message (email or webhook): about a day in all.
    notify_retry_schedule_s: list[float] = [5, 60, 300, 1800, 7200, 18000, 36000, 36000]
    # An endpoint failing this many calls in a row (across messages) is disabled.
    notify_webhook_disable_after: int = 50
    # After a secret rotation, the old one keeps signing too for this long.
    notify_webhook_rotation_grace_s: float = 86_400

    notify_sender_batch_size: int = 100
    notify_sender_poll_interval_s: float = 0.5
    # A claimed message not recorded after this long (crash) is tried again.
    notify_sender_lease_s: float = 120.0
    # Length of one reminder "day" in seconds: tests make it tiny.
    notify_reminder_day_s: float = 86_400
    notify_scheduler_poll_interval_s: float = 1.0

    def public_url(self) -> str:
        return (self.notifications_public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def unsubscribe_key(self) -> bytes:
        if self.unsubscribe_secret is not None:
            return self.unsubscribe_secret.get_secret_value().encode()
        import hashlib

        admin = self.admin_api_key.get_secret_value() if self.admin_api_key else ""
        return hashlib.sha256(b"unsubscribe:" + admin.encode()).digest()
