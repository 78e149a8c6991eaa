import uuid

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.selectors import live_sign_in


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
        sign_in = live_sign_in(sign_in_id)
        if sign_in is None or str(sign_in.user_id) != str(validated_token.get("user_id")):
            raise AuthenticationFailed("This sign-in has ended.", code="not_authenticated")
        user = sign_in.user
        user.sign_in = sign_in
        return user
