"""OpenAPI: every operation declares the error statuses it can answer, in the one error shape.

The generic ones are derived from the view (auth, path parameters, request body); a view adds its
own (409, 412, ...) with `extra_error_statuses`.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    field_codes = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


_DESCRIPTIONS = {
    "400": "Invalid input (`validation_error`, or `invalid_code` where codes are taken).",
    "401": "Not signed in, or the token is expired, forged or revoked.",
    "403": "Signed in, but this role may not use this route.",
    "404": "No such object, or not one you may see.",
    "409": "Conflicts with the stored state.",
    "412": "If-Match does not name the current version.",
    "413": "Request body over 1 MiB.",
    "415": "Body not UTF-8 JSON, or compressed.",
    "426": "X-App-Version below the supported minimum.",
    "429": "Throttled or locked out; see Retry-After.",
    "500": "Server error.",
}


class AutoSchema(SpectacularAutoSchema):
    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            # `?status=` is how an HTML form sends a field left empty; every optional query
            # parameter takes it as not given (DRF serializers' rule for form-encoded data).
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return parameters

    def _error_statuses(self) -> set[str]:
        statuses = {"400", "426", "429", "500"}
        public = all(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not public:
            statuses |= {"401", "403"}
        if "{" in self.path:
            statuses.add("404")
        if self.method in ("POST", "PUT", "PATCH"):
            statuses |= {"413", "415"}
        statuses |= {str(code) for code in getattr(self.view, "extra_error_statuses", ())}
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in sorted(self._error_statuses()):
            if status not in responses:
                response = self._get_response_for_code(ErrorSerializer, status, direction=direction)
                response["description"] = _DESCRIPTIONS[status]
                responses[status] = response
        return responses
