"""Every API route, read from the OpenAPI schema, so a route added tomorrow is tested tomorrow."""

import re
import uuid

from rest_framework.test import APIClient

PUBLIC_PATHS = {
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/enroll/",
    "/api/v1/auth/password-reset/",
    "/api/v1/auth/password-reset/confirm/",
    "/api/v1/consent/",
}
CLINICIAN_PREFIXES = ("/api/v1/patients/", "/api/v1/alerts/", "/api/v1/audit/", "/api/v1/exports/")


def schema_operations() -> list[tuple[str, str]]:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    operations = []
    for path, methods in schema["paths"].items():
        for method in methods:
            if method in {"get", "post", "put", "patch", "delete"}:
                operations.append((method, path))
    return sorted(operations)


def fill(path: str, **values) -> str:
    """Replaces {params} with the given values, or with a random UUID."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), uuid.uuid4())), path)
