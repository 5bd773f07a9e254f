"""Building blocks every ModelAdmin of the console uses.

- `RoleAccessMixin`: permissions from the user's role, never from Django's permission tables
  (auditors view, admins act).
- `ReadOnlyAdminMixin`: no add, change or delete form for anyone. The ledger (balances,
  entries, transactions, audit logs) uses it: money and states change only through the
  confirmed admin actions and views, which call the services.
- `LargeTableMixin`: list pages of tables with millions of rows: no full count, a bounded
  count for the paginator, sorting only on indexed columns.
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from wallet_project.admin_site import is_console_admin, is_console_user


class RoleAccessMixin:
    """Auditors (and admins) view; only admins add, change, delete and run actions.

    Actions declare `permissions=["act"]`, checked by `has_act_permission`.
    """

    def has_module_permission(self, request) -> bool:
        return is_console_user(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_console_user(request.user)

    def has_add_permission(self, request, *args) -> bool:
        return is_console_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_console_admin(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_console_admin(request.user)

    def has_act_permission(self, request) -> bool:
        return is_console_admin(request.user)

    def get_actions(self, request):
        if not is_console_admin(request.user):
            return {}
        return super().get_actions(request)


class ReadOnlyAdminMixin(RoleAccessMixin):
    """Nobody adds, edits or deletes these rows from a form; pages are view-only."""

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CappedCountPaginator(Paginator):
    """Counts at most `CAP` rows: `SELECT count(*) FROM (... LIMIT CAP + 1)`.

    A plain `count(*)` over millions of rows takes seconds, and pages past the cap would need
    large offsets; beyond it, staff narrow the list with filters, search or dates.
    """

    CAP = 10_000

    @cached_property
    def _found(self) -> int:
        return self.object_list.order_by()[: self.CAP + 1].count()

    @property
    def count(self) -> int:
        return min(self._found, self.CAP)

    @property
    def is_capped(self) -> bool:
        return self._found > self.CAP


class LargeTableMixin:
    """List pages of large tables: no unfiltered total, a bounded count, indexed order only."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    list_max_show_all = 200
    sortable_by = ()


def choices_filter(field: str, choices: list[tuple[str, str]], *, title: str | None = None):
    """A list filter offering fixed `choices` for `field`.

    Django's default filter for a plain text column lists `SELECT DISTINCT` values, a full
    scan of a large table on every page; a fixed list costs nothing.
    """

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return choices

        def queryset(self, request, queryset):
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    ChoicesFilter.title = title or field.replace("_", " ")
    ChoicesFilter.__name__ = f"{field.title().replace('_', '')}ChoicesFilter"
    return ChoicesFilter
