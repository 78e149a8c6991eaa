"""Explicit, synchronous hooks between apps whose imports point one way only.

accounts ← journal ← reminders: journal and accounts must not import reminders, yet a patient's
time-zone change must move their future prompts, and an entry answering a prompt must complete
it, in the same transaction. So the lower app calls a named hook here and reminders registers its
handler at start-up (reminders.apps). Unlike signals these are few, named, and called on purpose.
"""

from collections.abc import Callable


class Hook:
    def __init__(self, name: str, doc: str):
        self.name = name
        self.__doc__ = doc
        self._handlers: list[Callable] = []

    def register(self, handler: Callable) -> None:
        if handler not in self._handlers:
            self._handlers.append(handler)

    def call(self, **kwargs) -> list:
        return [handler(**kwargs) for handler in self._handlers]


prompt_answered = Hook(
    "prompt_answered",
    "(patient, prompt_id, answered_at) -> bool: an entry or assessment answers a prompt; the handler "
    "completes it and returns True when it had already expired (the answer is then late).",
)
patient_reminder_settings_changed = Hook(
    "patient_reminder_settings_changed",
    "(patient) -> None: time zone, quiet hours or status changed; future prompts must move.",
)
therapy_session_changed = Hook(
    "therapy_session_changed",
    "(session, deleted: bool) -> None: a session was created, moved, changed or deleted; its "
    "intensive-sampling prompts must follow.",
)
alert_opened = Hook(
    "alert_opened",
    "(alert) -> None: a new alert was opened (not new evidence on an open one); its notifications "
    "must be written in the same transaction.",
)
urgent_alert_refired = Hook(
    "urgent_alert_refired",
    "(alert) -> None: an urgent trigger added evidence to an unresolved alert; unless a round of it is "
    "still to go out, the care team must be told again, with notifications written in the same transaction.",
)
patient_export_sections = Hook(
    "patient_export_sections",
    "(patient) -> dict[str, Iterable[dict]]: more sections of the patient's own export (SPEC §10: all "
    "of their data) from apps the journal cannot import, each a name and its records, read lazily.",
)
