from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from backend.api.schema import ErrorSerializer


class SignInJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SignInJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from /api/v1/auth/token/ (15 minutes).",
        }


# POST /api/v1/auth/token/ answers 401 with one of four codes; a client tells them apart by code.
LOGIN_401 = OpenApiResponse(
    ErrorSerializer,
    description=(
        "Sign-in refused. `error.code` says why: `not_authenticated` (wrong email or password; the same "
        "answer whether or not the address exists), `otp_required` (this clinician uses two-factor sign-in: "
        "send `otp`), `otp_invalid` (wrong, expired or already used code: wait for the next one), "
        "`two_factor_setup_required` (two-factor sign-in is required and this clinician has not set it up: "
        "do that on the web dashboard first). Each of them counts towards the account's lockout (429)."
    ),
    examples=[
        OpenApiExample(
            "Code needed",
            value={
                "error": {
                    "code": "otp_required",
                    "message": "Two-factor sign-in is on for this account: send the code from your "
                    "authenticator app as otp.",
                }
            },
            status_codes=["401"],
            response_only=True,
        )
    ],
)
