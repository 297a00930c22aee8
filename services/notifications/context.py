"""What the event handlers, message recording and the reminder scheduler need besides a
connection: the settings, and the process's cache of program definitions. Built by the app
(or by ``consumers.consumer_groups``) and passed in: nothing is kept at import time."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.notifications.repository.programs import Definitions
from services.notifications.settings import NotificationsSettings


@dataclass(frozen=True)
class Context:
    settings: NotificationsSettings
    definitions: Definitions = field(default_factory=Definitions)
