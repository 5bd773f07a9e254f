"""Building blocks every ModelAdmin of the console uses.

- `RoleAccessMixin`: permissions from the user's role, never from Django's permission tables
  (auditors view, admins act).
- `ReadOnlyAdminMixin`: no add, change or delete form for anyone. The ledger (balances,
  entries, transactions, audit logs) uses it: money and states change only through the
  confirmed admin actions and views, which call the services.
- `LargeTableMixin`: list pages of tables with millions of rows: no full count, a bounded
  count for the paginator, sorting only on indexed columns.
- `OperationsMixin`: state changes (reverse, freeze, cancel, pause...) as confirmed
  operations with a required reason, each calling one service as the staff member.
- `RecordColumnsMixin`: the columns and search of records with a status (transactions,
  batches, schedules and their items): a pasted UUID finds its record exactly.
- `admin_link`, `status_badge`: the console's link to an object's page, and a status badge.
"""

import calendar
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Max, Min, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst

from console.site import is_console_admin, is_console_user
from wallet_project.errors import WalletError

if TYPE_CHECKING:
    # What the mixins extend, for the type checker: they are mixed into ModelAdmins.
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object


def admin_link(page: str, object_id: object, label: object = None) -> str:
    """A link to one object's console page: `page` is its URL name
    (`"admin:transactions_transaction_change"`), `label` by default the start of its id.

    Raises NoReverseMatch if `object_id` cannot be an argument of `page`.
    """
    url = reverse(page, args=[object_id])
    return format_html('<a href="{}">{}</a>', url, str(object_id)[:8] if label is None else label)


def status_badge(status: str) -> str:
    return format_html('<span class="wallet-badge {}">{}</span>', status, status)


class RoleAccessMixin(_ModelAdmin):
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

    def changelist_view(self, request, extra_context=None):
        # An action posted by someone who may not act is refused outright (403), not
        # answered with the list as if no action had been chosen.
        posted_action = request.method == "POST" and "action" in request.POST
        if posted_action and not self.has_act_permission(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)


class RecordColumnsMixin(_ModelAdmin):
    """`short_id` and `status_column` columns; a UUID search matches `uuid_search_field`.

    Any other search text falls through to the admin's `search_fields`.
    """

    uuid_search_field = "pk"

    def get_search_results(self, request, queryset, search_term):
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(**{self.uuid_search_field: value}), False

    @admin.display(description="id", ordering="created_at")
    def short_id(self, obj) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="status")
    def status_column(self, obj) -> str:
        return status_badge(obj.status)


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
    object_list: QuerySet[Any]  # a changelist's queryset

    @cached_property
    def _found(self) -> int:
        return self.object_list.order_by()[: self.CAP + 1].count()

    @property
    def count(self) -> int:
        return min(self._found, self.CAP)

    @property
    def is_capped(self) -> bool:
        return self._found > self.CAP


class BoundedDateChangeList(ChangeList):
    """A changelist whose date drill-down is built from the range's bounds.

    Django lists the years, months or days that hold rows with `SELECT DISTINCT
    date_trunc(...)` over every row in the range, a full scan of a large table on each page.
    Here one `MIN`/`MAX` (read from the index ends) bounds the range and every year, month
    or day between the bounds is offered; an empty one simply shows an empty list. A model
    admin whose lists no index bounds that way reads the bounds itself (`date_bounds`).
    """

    def date_bounds(self) -> dict[str, Any]:
        """`{"first", "last"}` of the date field over the list: the model admin's own
        `date_bounds(changelist)` when it has one and it answers, else `MIN`/`MAX`."""
        own = getattr(self.model_admin, "date_bounds", None)
        bounds = own(self) if own else None
        if bounds is None:
            bounds = self.queryset.aggregate(
                first=Min(self.date_hierarchy), last=Max(self.date_hierarchy)
            )
        return bounds

    @cached_property
    def bounded_date_hierarchy(self) -> dict[str, Any]:
        name = self.date_hierarchy
        lookups = [f"{name}__{part}" for part in ("year", "month", "day")]
        try:
            year, month, day = (
                int(self.params[key]) if key in self.params else None for key in lookups
            )
        except ValueError:
            return {"show": False}

        def link(filters: dict) -> str:
            return self.get_query_string(filters, [f"{name}__"])

        if year and month and day:
            chosen = dt.date(year, month, day)
            return {
                "show": True,
                "back": {
                    "link": link({lookups[0]: year, lookups[1]: month}),
                    "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
                },
                "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
            }
        bounds = self.date_bounds()
        if bounds["first"] is None:
            return {"show": False}
        first, last = (timezone.localtime(bounds[k]) for k in ("first", "last"))
        if not year and first.year == last.year:
            year = first.year
            if first.month == last.month:
                month = first.month
        if year and month:
            last_day = calendar.monthrange(year, month)[1]
            low = first.day if (first.year, first.month) == (year, month) else 1
            high = last.day if (last.year, last.month) == (year, month) else last_day
            return {
                "show": True,
                "back": {"link": link({lookups[0]: year}), "title": str(year)},
                "choices": [
                    {
                        "link": link({lookups[0]: year, lookups[1]: month, lookups[2]: d}),
                        "title": capfirst(
                            formats.date_format(dt.date(year, month, d), "MONTH_DAY_FORMAT")
                        ),
                    }
                    for d in range(low, high + 1)
                ],
            }
        if year:
            low = first.month if first.year == year else 1
            high = last.month if last.year == year else 12
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {
                        "link": link({lookups[0]: year, lookups[1]: m}),
                        "title": capfirst(
                            formats.date_format(dt.date(year, m, 1), "YEAR_MONTH_FORMAT")
                        ),
                    }
                    for m in range(low, high + 1)
                ],
            }
        return {
            "show": True,
            "back": None,
            "choices": [
                {"link": link({lookups[0]: str(y)}), "title": str(y)}
                for y in range(first.year, last.year + 1)
            ],
        }


class LargeTableMixin:
    """List pages of large tables: no unfiltered total, a bounded count, indexed order only,
    no per-choice counts in the filters (each would be a count over the table), and a date
    drill-down built from the range's bounds (`BoundedDateChangeList`)."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    change_list_template = "admin/wallet/change_list.html"

    def get_changelist(self, request, **kwargs):
        return BoundedDateChangeList

    paginator = CappedCountPaginator
    list_per_page = 50
    list_max_show_all = 200
    sortable_by = ()


def timestamp_column(field: str, description: str | None = None):
    """A column showing `field` to the second, on the ledger's clock (UTC).

    Django's default rendering drops the seconds, which the ledger's order depends on.
    """

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(self, obj) -> str:
        value = getattr(obj, field)
        if value is None:
            return "-"
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")

    return column


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


@dataclass(frozen=True)
class Operation:
    """A confirmed change of one object's state: a button on its page, an action on the list.

    `perform(request, obj, reason)` calls one service as `request.user` and raises a
    `WalletError` when refused. `applies_to(obj)` says whether the object's state allows it
    (the service checks again, under its lock). `lead` explains the effect on the
    confirmation page (a string, or a function of the object).
    """

    name: str
    label: str
    perform: Callable[[HttpRequest, Any, str], Any]
    applies_to: Callable[[Any], bool] = field(default=lambda obj: True)
    lead: str | Callable[[Any], str] = ""
    list_lead: str = "Every change is kept in the audit trail with your reason."
    danger: bool = False
    max_selected: int = 50

    def lead_for(self, obj: Any) -> str:
        return self.lead(obj) if callable(self.lead) else self.lead


class OperationsMixin(_ModelAdmin):
    """Adds `operations` to a ModelAdmin: per-object confirmation pages and list actions.

    Each operation gets the URL `<object id>/<name>/` (name `<app>_<model>_<name>`), a
    button on the object's page when it applies, and the list action `<name>_selected`.
    Only admins reach them; the reason is required and goes to the service, and the
    change is noted in the object's admin history.
    """

    operations: tuple[Operation, ...] = ()

    def operation_label(self, obj: Any) -> str:
        """How pages and messages name the object (`transaction 0685592c`)."""
        return str(obj)

    def operation_summary(self, obj: Any) -> list[tuple[str, Any]]:
        """Rows shown on an object's confirmation page."""
        return [(self.model._meta.verbose_name.capitalize(), obj)]

    def operation_describe(self, obj: Any) -> str:
        """One line per object on a list action's confirmation page."""
        return str(obj)

    def operation_done(self, obj: Any, result: Any, operation: Operation):
        """The success message of one object's operation."""
        return f"{operation.label}: {self.operation_label(obj)}."

    def get_urls(self):
        opts = self.model._meta
        wrap = self.admin_site.admin_view
        custom = [
            path(
                f"<path:object_id>/{operation.name}/",
                wrap(self._operation_view),
                {"operation_name": operation.name},
                name=f"{opts.app_label}_{opts.model_name}_{operation.name}",
            )
            for operation in self.operations
        ]
        return custom + super().get_urls()

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not is_console_admin(request.user):
            return actions
        for operation in self.operations:
            name = f"{operation.name}_selected"
            plural = self.model._meta.verbose_name_plural
            actions[name] = (
                _operation_action(operation),
                name,
                f"{operation.label} selected {plural}",
            )
        return actions

    def operation_links(self, request, obj: Any) -> list[dict]:
        """The buttons of the operations that apply to `obj` (none for auditors)."""
        if obj is None or not is_console_admin(request.user):
            return []
        opts = self.model._meta
        return [
            {
                "name": operation.name,
                "label": operation.label,
                "url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_{operation.name}",
                    args=[quote(obj.pk)],
                ),
            }
            for operation in self.operations
            if operation.applies_to(obj)
        ]

    def object_links(self, request, obj: Any) -> list[dict]:
        """Other links on the object's page (`label`, `url`, optional `css`)."""
        return []

    def object_context(self, request, obj: Any) -> dict:
        """More context for the object's page (sections below the fields)."""
        return {}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None:
            context["wallet_operations"] = self.operation_links(request, obj)
            context["wallet_links"] = self.object_links(request, obj)
            context.update(self.object_context(request, obj))
        return super().change_view(request, object_id, form_url, context)

    def _operation(self, name: str) -> Operation:
        return next(op for op in self.operations if op.name == name)

    def _change_url(self, obj: Any) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])

    def _perform(self, request, obj: Any, operation: Operation, reason: str) -> bool:
        from console.views import report_wallet_error

        try:
            result = operation.perform(request, obj, reason)
        except WalletError as exc:
            report_wallet_error(
                self, request, exc, doing=f"{operation.label.lower()} {self.operation_label(obj)}"
            )
            return False
        self.log_change(request, obj, f"{operation.label}: {reason}")
        self.message_user(request, self.operation_done(obj, result, operation), messages.SUCCESS)
        return True

    def _operation_view(self, request, object_id: str, operation_name: str):
        from console.views import confirmation_page, confirmed_reason, require_admin

        require_admin(request)
        operation = self._operation(operation_name)
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No such {self.model._meta.verbose_name}.")
        if not operation.applies_to(obj):
            self.message_user(
                request,
                f"{operation.label} does not apply to {self.operation_label(obj)}.",
                messages.ERROR,
            )
            return HttpResponseRedirect(self._change_url(obj))
        form, reason = confirmed_reason(request)
        if reason is not None:
            self._perform(request, obj, operation, reason)
            return HttpResponseRedirect(self._change_url(obj))
        return confirmation_page(
            request,
            model_admin=self,
            title=f"{operation.label} {self.operation_label(obj)}",
            lead=operation.lead_for(obj),
            form=form,
            summary=self.operation_summary(obj),
            submit_label=f"Yes, {operation.label.lower()}",
            cancel_url=self._change_url(obj),
            original=obj,
            danger=operation.danger,
        )

    def run_operation_action(self, request, queryset, operation: Operation):
        """The list action of `operation`: confirm the selection with a reason, then apply."""
        from console.views import confirmation_page, confirmed_reason

        objects = list(queryset[: operation.max_selected + 1])
        plural = self.model._meta.verbose_name_plural
        if len(objects) > operation.max_selected:
            self.message_user(
                request,
                f"Select at most {operation.max_selected} {plural} at once.",
                messages.ERROR,
            )
            return None
        refused = [obj for obj in objects if not operation.applies_to(obj)]
        if refused:
            self.message_user(
                request,
                f"{operation.label} does not apply to: "
                + ", ".join(self.operation_label(o) for o in refused),
                messages.ERROR,
            )
            return None
        form, reason = confirmed_reason(request)
        if reason is not None:
            for obj in objects:
                self._perform(request, obj, operation, reason)
            return None
        return confirmation_page(
            request,
            model_admin=self,
            title=f"{operation.label} {plural}",
            lead=operation.list_lead,
            form=form,
            objects=[self.operation_describe(obj) for obj in objects],
            action_name=f"{operation.name}_selected",
            selected_pks=[obj.pk for obj in objects],
            submit_label=f"Yes, {operation.label.lower()} them",
            cancel_url=request.get_full_path(),
            danger=operation.danger,
        )


def _operation_action(operation: Operation):
    def action(modeladmin, request, queryset):
        return modeladmin.run_operation_action(request, queryset, operation)

    action.__name__ = f"{operation.name}_selected"
    return action
