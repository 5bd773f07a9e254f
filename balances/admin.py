"""The console's balance pages: read-only, like the whole ledger."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from balances.models import Balance, BalanceEntry
from balances.selectors import history_span
from console.mixins import (
    LargeTableMixin,
    ReadOnlyAdminMixin,
    RecordColumnsMixin,
    timestamp_column,
)
from console.views import money_cell, transaction_link, user_link
from money.amounts import format_amount


def _one_user(changelist) -> int | None:
    """The user a list of entries is narrowed to (the user filter, or a user id searched)."""
    for value in (changelist.params.get("user__id__exact"), changelist.query):
        if value and value.strip().isdigit():
            return int(value.strip())
    return None


def _search_by_user_id(queryset, search_term: str):
    """A plain number searches by user id (an indexed lookup), not by text."""
    term = search_term.strip()
    if term.isdigit():
        return queryset.filter(user_id=int(term))
    return None


class AccountKindFilter(admin.SimpleListFilter):
    title = "account"
    parameter_name = "account"

    def lookups(self, request, model_admin):
        return [("user", "user accounts"), ("world", "world account")]

    def queryset(self, request, queryset):
        if self.value() == "world":
            return queryset.filter(balance__isnull=True)
        if self.value() == "user":
            return queryset.filter(balance__isnull=False)
        return queryset


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "owner",
        "currency_code",
        "amount_display",
        "entry_count",
        "last_updated",
        "history",
    )
    list_select_related = ("user",)
    list_filter = ("currency",)
    search_fields = ("=user__username", "=user__email")
    search_help_text = "A user id, or a user's exact username or email."
    date_hierarchy = "last_updated_at"
    ordering = ("user_id", "currency_id")
    fields = (
        "owner",
        "currency",
        "amount_display",
        "entry_count",
        "head_hash",
        "created",
        "last_updated",
        "history",
    )
    readonly_fields = ("owner", "amount_display", "history", "created", "last_updated")
    created = timestamp_column("created_at")
    last_updated = timestamp_column("last_updated_at")

    def get_search_results(self, request, queryset, search_term):
        found = _search_by_user_id(queryset, search_term)
        if found is not None:
            return found, False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="user", ordering="user_id")
    def owner(self, obj: Balance) -> str:
        return user_link(obj.user)

    @admin.display(description="currency", ordering="currency_id")
    def currency_code(self, obj: Balance) -> str:
        return obj.currency_id

    @admin.display(description="amount")
    def amount_display(self, obj: Balance) -> str:
        return money_cell(obj.amount, obj.currency_id, with_code=False)

    @admin.display(description="history")
    def history(self, obj: Balance) -> str:
        url = reverse("admin:balances_balanceentry_changelist")
        return format_html(
            '<a href="{}?user__id__exact={}&currency__code__exact={}">entries</a>',
            url,
            obj.user_id,
            obj.currency_id,
        )


@admin.register(BalanceEntry)
class BalanceEntryAdmin(RecordColumnsMixin, ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    uuid_search_field = "transaction_id"
    list_display = (
        "id",
        "created",
        "owner",
        "currency_code",
        "delta_display",
        "balance_after_display",
        "transaction_column",
    )
    list_select_related = ("user",)
    list_filter = ("currency", AccountKindFilter)
    search_fields = ("=user__username",)
    search_help_text = "A user id, a transaction id, or a user's exact username."
    date_hierarchy = "created_at"
    # The primary key follows insertion order; the table has no index on time alone.
    ordering = ("-id",)
    sortable_by = ("id",)
    fields = (
        "id",
        "owner",
        "currency",
        "delta_display",
        "balance_after_display",
        "transaction_column",
        "balance",
        "created",
    )
    created = timestamp_column("created_at")
    readonly_fields = (
        "created",
        "owner",
        "delta_display",
        "balance_after_display",
        "transaction_column",
    )

    def get_search_results(self, request, queryset, search_term):
        found = _search_by_user_id(queryset, search_term)
        if found is not None:
            return found, False
        return super().get_search_results(request, queryset, search_term)  # a transaction id

    def date_bounds(self, changelist) -> dict | None:
        """One user's entries: the first and last change from probes of the user-time index
        (`history_span`). `MIN`/`MAX` over them would read every entry of the user, since
        the index orders time within one currency only."""
        user_id = _one_user(changelist)
        if user_id is None:
            return None
        currency = changelist.params.get("currency__code__exact")
        first, last = history_span(user_id=user_id, currency=currency) or (None, None)
        return {"first": first, "last": last}

    @admin.display(description="account", ordering="user_id")
    def owner(self, obj: BalanceEntry) -> str:
        if obj.user_id is None:
            return format_html('<span class="wallet-muted">{}</span>', "world")
        return user_link(obj.user)

    @admin.display(description="currency")
    def currency_code(self, obj: BalanceEntry) -> str:
        return obj.currency_id

    @admin.display(description="delta")
    def delta_display(self, obj: BalanceEntry) -> str:
        sign = "positive" if obj.delta > 0 else "negative"
        return format_html(
            '<span class="wallet-amount {}">{}</span>',
            sign,
            format_amount(obj.delta, obj.currency_id),
        )

    @admin.display(description="balance after")
    def balance_after_display(self, obj: BalanceEntry) -> str:
        if obj.balance_after is None:
            return "-"
        return format_amount(obj.balance_after, obj.currency_id)

    @admin.display(description="transaction")
    def transaction_column(self, obj: BalanceEntry) -> str:
        return transaction_link(obj.transaction_id)
