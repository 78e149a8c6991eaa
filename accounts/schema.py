from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
