from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from accounts.models import RefreshToken, User


@shared_task(ignore_result=True)
def send_password_reset_email(user_id: str) -> None:
    from accounts.services import password_reset_token

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    link = f"{settings.PUBLIC_BASE_URL}/reset-password?token={password_reset_token(user)}"
    # No health information and no clinic name: others may read a patient's inbox.
    send_mail(
        subject="Reset your password",
        message=f"Someone asked to reset your password. If it was you, open this link within three days:\n\n{link}\n\n"
        "If it was not you, ignore this email.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


@shared_task(ignore_result=True)
def purge_expired_refresh_tokens() -> int:
    deleted, _ = RefreshToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
