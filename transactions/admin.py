"""The console's transaction pages: the ledger read-only, reversal with a reason, CSV export."""

import uuid

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from audit.services import record_event
from balances.models import BalanceEntry
from transactions import services
from transactions.models import (
    Currency,
    IdempotencyKey,
    Transaction,
    TransactionStatus,
    TransactionType,
)
from transactions.money import format_amount
from transactions.selectors_admin import list_transactions_for_export
from wallet_project.admin_mixins import LargeTableMixin, ReadOnlyAdminMixin, choices_filter
from wallet_project.admin_site import is_console_admin
from wallet_project.admin_views import (
    confirmation_page,
    confirmed_reason,
    csv_response,
    csv_text,
    report_wallet_error,
    require_admin,
)
from wallet_project.errors import WalletError

MAX_REVERSALS_AT_ONCE = 50


def user_link(user) -> str:
    """A link to a user's console page, or `external` for the world account."""
    if user is None:
        return format_html('<span class="wallet-muted">{}</span>', "external")
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user
    )


def transaction_link(txn_id) -> str:
    if txn_id is None:
        return "-"
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:transactions_transaction_change", args=[txn_id]),
        str(txn_id)[:8],
    )


def is_reversible(txn: Transaction) -> bool:
    return txn.status == TransactionStatus.COMPLETED and txn.type != TransactionType.REVERSAL


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
    fields = ("user", "currency", "delta_display", "balance_after_display", "created_at")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "balance entries (the world account has no user)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user").order_by("id")

    @admin.display(description="delta")
    def delta_display(self, obj: BalanceEntry) -> str:
        return format_amount(obj.delta, obj.currency_id)

    @admin.display(description="balance after")
    def balance_after_display(self, obj: BalanceEntry) -> str:
        return format_amount(obj.balance_after, obj.currency_id) or "-"


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = (
        "short_id",
        "created_at",
        "type",
        "status_badge",
        "amount_display",
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
    sortable_by = ("created_at",)
    actions = ("reverse_selected",)
    inlines = (BalanceEntryInline,)
    change_list_template = "admin/transactions/transaction/change_list.html"
    change_form_template = "admin/transactions/transaction/change_form.html"
    fieldsets = (
        (None, {"fields": ("id", "type", "status_badge", "amount_display", "currency")}),
        ("Parties", {"fields": ("from_party", "to_party", "initiated_by")}),
        ("Details", {"fields": ("description", "reference", "failure_code")}),
        ("Reversal", {"fields": ("reversal_of_link", "reversed_by_link")}),
        ("Times", {"fields": ("created_at", "completed_at")}),
    )
    readonly_fields = (
        "status_badge",
        "amount_display",
        "from_party",
        "to_party",
        "reversal_of_link",
        "reversed_by_link",
    )

    def get_search_results(self, request, queryset, search_term):
        try:
            txn_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=txn_id), False

    @admin.display(description="id", ordering="created_at")
    def short_id(self, obj: Transaction) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="status")
    def status_badge(self, obj: Transaction) -> str:
        return format_html('<span class="wallet-badge {}">{}</span>', obj.status, obj.status)

    @admin.display(description="amount")
    def amount_display(self, obj: Transaction) -> str:
        return format_html(
            '<span class="wallet-amount">{} {}</span>',
            format_amount(obj.amount, obj.currency_id),
            obj.currency_id,
        )

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

    # ------------------------------------------------------------ pages

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        wrap = self.admin_site.admin_view
        custom = [
            path("export/", wrap(self.export_view), name=f"{name}_export"),
            path("<path:object_id>/reverse/", wrap(self.reverse_view), name=f"{name}_reverse"),
        ]
        return custom + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        txn = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if txn is not None:
            context["can_reverse"] = is_console_admin(request.user) and is_reversible(txn)
            context["reverse_url"] = reverse(
                "admin:transactions_transaction_reverse", args=[txn.pk]
            )
            context["audit_url"] = (
                reverse("admin:audit_auditlog_changelist")
                + f"?entity_type=transaction&entity_id__exact={txn.pk}"
            )
        return super().change_view(request, object_id, form_url, context)

    def _change_url(self, txn_id) -> str:
        return reverse("admin:transactions_transaction_change", args=[txn_id])

    def _reverse_one(self, request, txn: Transaction, reason: str) -> Transaction | None:
        try:
            reversal = services.reverse(actor=request.user, transaction_id=txn.pk, reason=reason)
        except WalletError as exc:
            report_wallet_error(self, request, exc, doing=f"reverse transaction {str(txn.pk)[:8]}")
            return None
        self.log_change(request, txn, f"Reversed by {reversal.pk}: {reason}")
        return reversal

    def _describe(self, txn: Transaction) -> str:
        amount = f"{format_amount(txn.amount, txn.currency_id)} {txn.currency_id}"
        source = txn.from_user or "external"
        target = txn.to_user or "external"
        return f"{str(txn.pk)[:8]}: {txn.type} {amount} from {source} to {target} ({txn.status})"

    def reverse_view(self, request, object_id):
        require_admin(request)
        txn = self.get_object(request, unquote(object_id))
        if txn is None:
            raise Http404("No such transaction.")
        if not is_reversible(txn):
            self.message_user(
                request,
                f"Only a completed credit, debit or transfer can be reversed; this is a "
                f"{txn.status} {txn.type}.",
                messages.ERROR,
            )
            return HttpResponseRedirect(self._change_url(txn.pk))
        form, reason = confirmed_reason(request)
        if reason is not None:
            reversal = self._reverse_one(request, txn, reason)
            if reversal is not None:
                self.message_user(
                    request,
                    format_html(
                        "Transaction {} reversed by {}.",
                        str(txn.pk)[:8],
                        transaction_link(reversal.pk),
                    ),
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(self._change_url(txn.pk))
        amount = f"{format_amount(txn.amount, txn.currency_id)} {txn.currency_id}"
        back_from = txn.to_user or "the world account"
        back_to = txn.from_user or "the world account"
        return confirmation_page(
            request,
            model_admin=self,
            title=f"Reverse transaction {str(txn.pk)[:8]}",
            lead=(
                f"Reversing moves {amount} back from {back_from} to {back_to} as a new "
                "reversal transaction, and marks this one reversed. It cannot be undone."
            ),
            form=form,
            summary=[
                ("Transaction", str(txn.pk)),
                ("Type", txn.type),
                ("Amount", amount),
                ("From", txn.from_user or "external"),
                ("To", txn.to_user or "external"),
                ("Created", txn.created_at),
                ("Description", txn.description or "-"),
            ],
            submit_label="Yes, reverse it",
            cancel_url=self._change_url(txn.pk),
            original=txn,
            danger=True,
        )

    @admin.action(description="Reverse selected transactions", permissions=["act"])
    def reverse_selected(self, request, queryset):
        txns = list(queryset.select_related("from_user", "to_user")[: MAX_REVERSALS_AT_ONCE + 1])
        if len(txns) > MAX_REVERSALS_AT_ONCE:
            self.message_user(
                request,
                f"Select at most {MAX_REVERSALS_AT_ONCE} transactions to reverse at once.",
                messages.ERROR,
            )
            return None
        refused = [t for t in txns if not is_reversible(t)]
        if refused:
            self.message_user(
                request,
                "Only completed credits, debits and transfers can be reversed; not: "
                + ", ".join(str(t.pk)[:8] for t in refused),
                messages.ERROR,
            )
            return None
        form, reason = confirmed_reason(request)
        if reason is not None:
            done = sum(self._reverse_one(request, txn, reason) is not None for txn in txns)
            if done:
                self.message_user(request, f"Reversed {done} transaction(s).", messages.SUCCESS)
            return None
        return confirmation_page(
            request,
            model_admin=self,
            title="Reverse transactions",
            lead=(
                "Each transaction's money moves back as a new reversal transaction, and the "
                "original is marked reversed. This cannot be undone."
            ),
            form=form,
            objects=[self._describe(t) for t in txns],
            action_name="reverse_selected",
            selected_pks=[t.pk for t in txns],
            submit_label="Yes, reverse them",
            cancel_url=request.get_full_path(),
            danger=True,
        )

    def export_view(self, request):
        """The current changelist (filters, search, dates) as CSV, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist_url = reverse("admin:transactions_transaction_changelist")
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            self.message_user(request, "Those filters are not valid.", messages.ERROR)
            return HttpResponseRedirect(changelist_url)
        rows = list_transactions_for_export(changelist.queryset)
        record_event(
            actor_id=request.user.pk,
            action="admin.transactions_exported",
            entity_type="export",
            entity_id="transactions",
            details={"filters": dict(request.GET.items())},
        )

        def lines():
            yield [
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

        return csv_response(lines(), filename="transactions.csv")


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
