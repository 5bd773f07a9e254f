"""Transactions, currencies and idempotency keys: read-only pages, confirmed operations, CSV."""

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from audit.services import record_event
from balances.models import BalanceEntry
from console.mixins import (
    LargeTableMixin,
    Operation,
    OperationsMixin,
    ReadOnlyAdminMixin,
    RecordColumnsMixin,
    choices_filter,
    timestamp_column,
)
from console.views import (
    audit_link,
    csv_response,
    csv_text,
    transaction_link,
    user_link,
)
from money.amounts import format_amount
from money.models import Currency
from transactions import services
from transactions.models import (
    IdempotencyKey,
    Transaction,
    TransactionStatus,
    TransactionType,
)
from transactions.selectors_admin import list_transactions_for_export


def money_text(txn: Transaction) -> str:
    return f"{format_amount(txn.amount, txn.currency_id)} {txn.currency_id}"


def is_reversible(txn: Transaction) -> bool:
    return txn.status == TransactionStatus.COMPLETED and txn.type != TransactionType.REVERSAL


def is_pending(txn: Transaction) -> bool:
    return txn.status == TransactionStatus.PENDING


def _reversal_lead(txn: Transaction) -> str:
    back_from = txn.to_user or "the world account"
    back_to = txn.from_user or "the world account"
    return (
        f"Reversing moves {money_text(txn)} back from {back_from} to {back_to} as a new "
        "reversal transaction, and marks this one reversed. It cannot be undone."
    )


REVERSE = Operation(
    name="reverse",
    label="Reverse",
    perform=lambda request, txn, reason: services.reverse(
        actor=request.user, transaction_id=txn.pk, reason=reason
    ),
    applies_to=is_reversible,
    lead=_reversal_lead,
    list_lead=(
        "Each transaction's money moves back as a new reversal transaction, and the original "
        "is marked reversed. This cannot be undone."
    ),
    danger=True,
)
CANCEL_PENDING = Operation(
    name="cancel",
    label="Cancel",
    perform=lambda request, txn, reason: services.cancel_pending_transaction(
        actor=request.user, transaction_id=txn.pk, reason=reason
    ),
    applies_to=is_pending,
    lead=(
        "Cancelling fails this queued transaction (failure code `cancelled`) before a worker "
        "runs it. No money moves."
    ),
    list_lead="Each queued transaction fails with the code `cancelled`. No money moves.",
    danger=True,
)
REQUEUE_PENDING = Operation(
    name="requeue",
    label="Requeue",
    perform=lambda request, txn, reason: services.requeue_pending_transaction(
        actor=request.user, transaction_id=txn.pk, reason=reason
    ),
    applies_to=is_pending,
    lead=(
        "Requeueing sends this transaction to the worker pool again (for a lost message). "
        "It is harmless if the first message is still queued: a transaction is applied once."
    ),
    list_lead="Each transaction is sent to the worker pool again; none is applied twice.",
)


class PartyFilter(admin.SimpleListFilter):
    """Transactions a user took part in, as sender or recipient (`?party=<user id>`)."""

    title = "party"
    parameter_name = "party"

    def lookups(self, request, model_admin):
        value = self.value()
        if value and value.isdigit():
            return [(value, f"user #{value}")]
        return []

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(Q(from_user_id=int(value)) | Q(to_user_id=int(value)))


class BalanceEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = BalanceEntry
    fk_name = "transaction"
    fields = ("user", "currency", "delta_display", "balance_after_display", "created")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "balance entries (the world account has no user)"

    created = timestamp_column("created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user").order_by("id")

    @admin.display(description="delta")
    def delta_display(self, obj: BalanceEntry) -> str:
        return format_amount(obj.delta, obj.currency_id)

    @admin.display(description="balance after")
    def balance_after_display(self, obj: BalanceEntry) -> str:
        return format_amount(obj.balance_after, obj.currency_id) or "-"


@admin.register(Transaction)
class TransactionAdmin(
    RecordColumnsMixin, OperationsMixin, ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin
):
    list_display = (
        "short_id",
        "created",
        "type",
        "status_column",
        "amount_column",
        "from_party",
        "to_party",
        "reference",
        "description_short",
    )
    list_select_related = ("from_user", "to_user")
    list_filter = ("type", "status", "currency", PartyFilter)
    search_fields = ("=reference", "=from_user__username", "=to_user__username")
    search_help_text = "A transaction id, an exact reference, or a party's exact username."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    sortable_by = ("created",)
    operations = (REVERSE, CANCEL_PENDING, REQUEUE_PENDING)
    inlines = (BalanceEntryInline,)
    change_list_template = "admin/transactions/transaction/change_list.html"
    change_form_template = "admin/wallet/change_form.html"
    fieldsets = (
        (None, {"fields": ("id", "type", "status_column", "amount_column", "currency")}),
        ("Parties", {"fields": ("from_party", "to_party", "initiated_by")}),
        ("Details", {"fields": ("description", "reference", "failure_code")}),
        ("Reversal", {"fields": ("reversal_of_link", "reversed_by_link")}),
        ("Times (UTC)", {"fields": ("created", "completed")}),
    )
    readonly_fields = (
        "created",
        "completed",
        "status_column",
        "amount_column",
        "from_party",
        "to_party",
        "reversal_of_link",
        "reversed_by_link",
    )

    created = timestamp_column("created_at")
    completed = timestamp_column("completed_at")

    @admin.display(description="amount")
    def amount_column(self, obj: Transaction) -> str:
        return format_html('<span class="wallet-amount">{}</span>', money_text(obj))

    @admin.display(description="from")
    def from_party(self, obj: Transaction) -> str:
        return user_link(obj.from_user)

    @admin.display(description="to")
    def to_party(self, obj: Transaction) -> str:
        return user_link(obj.to_user)

    @admin.display(description="description")
    def description_short(self, obj: Transaction) -> str:
        text = obj.description or ""
        return text if len(text) <= 60 else f"{text[:57]}..."

    @admin.display(description="reversal of")
    def reversal_of_link(self, obj: Transaction) -> str:
        return transaction_link(obj.reversal_of_id)

    @admin.display(description="reversed by")
    def reversed_by_link(self, obj: Transaction) -> str:
        reversal = Transaction.objects.filter(reversal_of_id=obj.pk).values_list("pk", flat=True)
        return transaction_link(reversal.first())

    # ------------------------------------------------------------ operations

    def operation_label(self, obj: Transaction) -> str:
        return f"transaction {str(obj.pk)[:8]}"

    def operation_summary(self, obj: Transaction) -> list[tuple[str, object]]:
        return [
            ("Transaction", str(obj.pk)),
            ("Type", obj.type),
            ("Status", obj.status),
            ("Amount", money_text(obj)),
            ("From", obj.from_user or "external"),
            ("To", obj.to_user or "external"),
            ("Created", obj.created_at),
            ("Description", obj.description or "-"),
        ]

    def operation_describe(self, obj: Transaction) -> str:
        source = obj.from_user or "external"
        target = obj.to_user or "external"
        return f"{str(obj.pk)[:8]}: {obj.type} {money_text(obj)} from {source} to {target} ({obj.status})"

    def operation_done(self, obj: Transaction, result, operation: Operation):
        if operation is REVERSE:
            return format_html(
                "Transaction {} reversed by {}.", str(obj.pk)[:8], transaction_link(result.pk)
            )
        if operation is CANCEL_PENDING:
            return f"Transaction {str(obj.pk)[:8]} cancelled."
        return f"Transaction {str(obj.pk)[:8]} sent to the worker pool again."

    def object_links(self, request, obj: Transaction) -> list[dict]:
        return [audit_link("transaction", obj.pk)]

    # ------------------------------------------------------------ CSV export

    def get_urls(self):
        opts = self.model._meta
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name=f"{opts.app_label}_{opts.model_name}_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request):
        """The current changelist (filters, search, dates) as CSV, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            self.message_user(request, "Those filters are not valid.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:transactions_transaction_changelist"))
        rows = list_transactions_for_export(changelist.queryset)
        record_event(
            actor_id=request.user.pk,
            action="admin.transactions_exported",
            entity_type="export",
            entity_id="transactions",
            details={"filters": dict(request.GET.items())},
        )
        return csv_response(_export_lines(rows), filename="transactions.csv")


EXPORT_COLUMNS = [
    "id",
    "created_at",
    "completed_at",
    "type",
    "status",
    "amount",
    "currency",
    "from_user_id",
    "from_username",
    "to_user_id",
    "to_username",
    "description",
    "reference",
    "reversal_of",
    "failure_code",
    "initiated_by_id",
]


def _export_lines(rows):
    yield EXPORT_COLUMNS
    for txn in rows.iterator(chunk_size=2000):
        yield [
            str(txn.pk),
            txn.created_at.isoformat(),
            txn.completed_at.isoformat() if txn.completed_at else "",
            txn.type,
            txn.status,
            format_amount(txn.amount, txn.currency_id),
            txn.currency_id,
            txn.from_user_id or "",
            csv_text(txn.from_user.username) if txn.from_user else "",
            txn.to_user_id or "",
            csv_text(txn.to_user.username) if txn.to_user else "",
            csv_text(txn.description),
            csv_text(txn.reference),
            str(txn.reversal_of_id or ""),
            txn.failure_code or "",
            txn.initiated_by_id or "",
        ]


@admin.register(Currency)
class CurrencyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("code", "name", "exponent", "enabled")
    list_filter = ("enabled", "exponent")
    search_fields = ("code", "name")
    ordering = ("code",)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = ("key", "user", "state", "response_status", "transaction_column", "created_at")
    list_select_related = ("user",)
    list_filter = (
        choices_filter("state", [("in_progress", "in progress"), ("completed", "completed")]),
    )
    search_fields = ("=key", "=user__username")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    sortable_by = ("created_at",)
    fields = (
        "user",
        "key",
        "request_fingerprint",
        "state",
        "response_status",
        "response_body",
        "transaction_column",
        "created_at",
    )
    readonly_fields = ("transaction_column",)

    @admin.display(description="transaction")
    def transaction_column(self, obj: IdempotencyKey) -> str:
        return transaction_link(obj.transaction_id)
