import uuid

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import SignIn


class SignInJWTAuthentication(JWTAuthentication):
    """Bearer access tokens, valid only while their sign-in is live.

    One query loads the sign-in, its user, the clinic and (for patients) the patient row, so a
    revoked sign-in stops working at once and views need no further query to know who is asking.
    """

    def get_user(self, validated_token):
        try:
            sign_in_id = uuid.UUID(str(validated_token.get("sid")))
        except ValueError:
            raise AuthenticationFailed("Token is not valid.", code="not_authenticated") from None
        try:
            # get(), not first(): no ORDER BY to build or sort; this runs on every API request.
            sign_in = SignIn.objects.select_related("user", "user__clinic", "user__patient").get(
                id=sign_in_id, revoked_at__isnull=True, user__is_active=True
            )
        except SignIn.DoesNotExist:
            sign_in = None
        if sign_in is None or str(sign_in.user_id) != str(validated_token.get("user_id")):
            raise AuthenticationFailed("This sign-in has ended.", code="not_authenticated")
        user = sign_in.user
        user.sign_in = sign_in
        patient = getattr(user, "patient", None) if user.is_patient else None
        if patient is not None and patient.clinic_id == user.clinic_id:
            patient.clinic = user.clinic  # already loaded: the alert rules read the clinic's thresholds
        return user
