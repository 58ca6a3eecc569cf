"""Cursor pagination of the API (its own module: DRF's settings import it while the view
classes are being defined). The exports page with their own keyset cursors
(``exports.pagination``); this is the default for any other list an app publishes."""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

INVALID_CURSOR = (
    "This cursor is not valid: it was changed, cut or made for another endpoint. Follow the "
    "next and previous links as given, or start again without a cursor."
)


class StableCursorPagination(CursorPagination):
    """Cursor pagination on the primary key: a page never shifts while a large pull runs."""

    ordering = "pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """DRF's decoding; a malformed cursor, or a position that is not a primary key (an
        integer), is a 400 with a sentence, not a 404 or a database error."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None:
            try:
                int(cursor.position)
            except ValueError:
                raise ValidationError({"cursor": [INVALID_CURSOR]}) from None
        return cursor
