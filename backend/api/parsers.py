from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """JSON is UTF-8 (RFC 8259). Any other declared charset is refused with 415 instead of being
    handed to a codec lookup that could fail in odd ways or stretch the body."""

    def parse(self, stream, media_type=None, parser_context=None):
        declared = self._declared_charset(media_type)
        if declared is not None and declared not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(media_type)
        parser_context = dict(parser_context or {}, encoding="utf-8")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Brackets nested thousands deep fit well under the body limit; the parser gives up on
            # them with a RecursionError, not the ValueError DRF turns into a 400.
            raise ParseError("JSON parse error - nested too deeply.") from None

    @staticmethod
    def _declared_charset(media_type: str | None) -> str | None:
        for part in (media_type or "").split(";")[1:]:
            name, _, value = part.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"').lower()
        return None
