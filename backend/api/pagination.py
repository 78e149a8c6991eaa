import re

from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

_PAGE_SIZE = re.compile(r"[0-9]{1,9}")


class CursorPagination(pagination.CursorPagination):
    """Cursor pagination for feeds that grow while a client reads them (SPEC §3)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-created_at"

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot read with 404, as if the list did not exist; it is a bad
        # query parameter like any other, so it gets the 400 every list declares.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}, code="invalid_cursor")

    def get_page_size(self, request):
        # DRF quietly serves the default page for a page_size it cannot read; the schema says it is
        # an integer, so anything else is a 400 like every other bad parameter. Above the maximum
        # it is capped, as documented.
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:
            return self.page_size
        if not _PAGE_SIZE.fullmatch(raw) or int(raw) < 1:
            raise ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size} is required."]},
                code="invalid",
            )
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Results per page, default {self.page_size}; above {self.max_page_size} it is capped."
                )
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


def cursor_pagination(*ordering: str) -> type[CursorPagination]:
    """A cursor paginator over the given (unique, stable) ordering."""
    return type("CursorPagination", (CursorPagination,), {"ordering": ordering})
