"""Page-number pagination of the API's lists: Ninja's, with a page the database can offset."""

from ninja import Field, Schema
from ninja.pagination import PageNumberPagination

# PostgreSQL's largest int: far past any real list, and (page - 1) × the
# largest page size (100) stays inside the bigint OFFSET, which a bigger page
# overflowed (a database error instead of a field error).
MAX_PAGE = 2**31 - 1


class Pages(PageNumberPagination):
    """``?page=`` (1 to MAX_PAGE) and ``?page_size=`` (larger sizes are cut to 100)."""

    class Input(Schema):
        page: int = Field(1, ge=1, le=MAX_PAGE)
        page_size: int | None = Field(None, ge=1)
