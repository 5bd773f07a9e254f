"""Cursor pagination for every list: `{next, previous, results}`, `page_size` up to 200.

`MergedQuerySets` pages a read whose rows come from several indexes as one list.
"""

from typing import Generic, Self, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.pagination import CursorPagination as DrfCursorPagination


class CursorPagination(DrfCursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ("-created_at", "-id")


M = TypeVar("M", bound=Model)


class MergedQuerySets(Generic[M]):
    """Querysets of one model, not overlapping, read as one ordered list.

    What cursor pagination does to a queryset (`order_by`, the cursor's `filter`, the page's
    slice) is done to each part, and PostgreSQL merges the parts' ordered and limited rows
    (`(... LIMIT n) UNION ALL (... LIMIT n) ORDER BY ... LIMIT n`). For a read that one
    index per part serves, like a user's transactions as sender and as recipient, every page
    is then one short range scan of each index, where the `OR` of the parts would scan
    whatever index matches the order and filter out the other users' rows.
    """

    def __init__(self, *parts: QuerySet[M], ordering: tuple[str, ...] = ()) -> None:
        self.parts = parts
        self.ordering = ordering

    def _each(self, method: str, *args, **kwargs) -> Self:
        parts = [getattr(part, method)(*args, **kwargs) for part in self.parts]
        return type(self)(*parts, ordering=self.ordering)

    def filter(self, *args, **kwargs) -> Self:
        return self._each("filter", *args, **kwargs)

    def select_related(self, *fields: str) -> Self:
        return self._each("select_related", *fields)

    def order_by(self, *fields: str) -> Self:
        merged = self._each("order_by", *fields)
        merged.ordering = fields
        return merged

    def __getitem__(self, page: slice) -> list[M]:
        if not isinstance(page, slice) or page.stop is None or page.step is not None:
            raise TypeError("MergedQuerySets reads pages: a slice with an end, such as [0:51].")
        if not self.ordering:
            raise TypeError("MergedQuerySets needs an order_by() before it is sliced.")
        heads = [part[: page.stop] for part in self.parts]
        merged = heads[0].union(*heads[1:], all=True).order_by(*self.ordering)
        return list(merged[page])
