from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Cursor pagination for feeds that grow while a client reads them (SPEC §3)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-created_at"


def cursor_pagination(*ordering: str) -> type[CursorPagination]:
    """A cursor paginator over the given (unique, stable) ordering."""
    return type("CursorPagination", (CursorPagination,), {"ordering": ordering})
