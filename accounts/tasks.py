import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import RefreshToken, User

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def send_password_reset_email(user_id: str) -> None:
    from accounts.services import password_reset_token

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    link = f"{settings.PUBLIC_BASE_URL}{reverse('dashboard:password-reset')}?token={password_reset_token(user)}"
    # No health information and no clinic name: others may read a patient's inbox.
    try:
        send_mail(
            subject="Reset your password",
            message=f"Someone asked to reset your password. If it was you, open this link within three days:"
            f"\n\n{link}\n\nIf it was not you, ignore this email.",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
    except smtplib.SMTPException as exc:
        # Not raised on: Celery would log the exception's text, and an SMTP error quotes the
        # address (a refused recipient, the server's reply), tying a person to the clinic. The
        # user id and the error's type are enough to look into it; the person can ask again.
        logger.warning(
            "password reset email not sent: %s",
            type(exc).__name__,
            extra={"task": "send_password_reset_email", "user_id": str(user.pk)},
        )


@shared_task(ignore_result=True)
def purge_expired_refresh_tokens() -> int:
    deleted, _ = RefreshToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
