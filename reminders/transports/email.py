"""Reminders by email, for a patient without an active phone whose clinic allows it (SPEC §7), and
alert notifications to clinicians (SPEC §9; their text lives with them, in services).

The text names no clinic, condition or questionnaire: family members may read a patient's inbox.
It only says that something is waiting and where to find it.
"""

import smtplib

from django.conf import settings
from django.core.mail import send_mail

SUBJECT = "A reminder from Interlude"


class EmailRefused(Exception):
    """The server refused the recipient or sender for good; trying again will not help."""


class EmailUnavailable(Exception):
    """The mail server could not be reached or failed for now; try again later."""


def reminder_email_body() -> str:
    link = settings.PUBLIC_BASE_URL or "the Interlude app"
    return (
        "Hello,\n\n"
        "You have a reminder waiting in Interlude. Open the app, or sign in here:\n\n"
        f"{link}\n\n"
        "You get this email because no phone is set up for notifications.\n"
    )


def email_send(*, to: str) -> None:
    """A patient's reminder."""
    message_send(to=to, subject=SUBJECT, body=reminder_email_body())


def message_send(*, to: str, subject: str, body: str) -> None:
    """Plain text from the neutral sender (DEFAULT_FROM_EMAIL); raises EmailRefused or EmailUnavailable."""
    try:
        send_mail(subject=subject, message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[to])
    except smtplib.SMTPRecipientsRefused as exc:
        if all(code >= 500 for code, _ in exc.recipients.values()):
            raise EmailRefused("recipient_refused") from exc
        raise EmailUnavailable("recipient_deferred") from exc
    except smtplib.SMTPSenderRefused as exc:
        if exc.smtp_code >= 500:
            raise EmailRefused("sender_refused") from exc
        raise EmailUnavailable("sender_deferred") from exc
    except (smtplib.SMTPException, OSError) as exc:  # connection refused, timeouts, 4xx answers
        raise EmailUnavailable(type(exc).__name__) from exc
