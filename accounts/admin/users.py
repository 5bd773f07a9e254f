"""The user pages: who holds what, recent activity, freeze, adjust, statements.

User rows are never edited from a form: freezing, unfreezing and balance adjustments go
through confirmation pages with a required reason and call the services as the staff member.
"""

import uuid
from datetime import datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import Group
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts import services as account_services
from accounts.admin.forms import AdjustmentForm, StatementForm
from accounts.models import User
from audit.services import record_event
from balances.models import Balance
from balances.selectors import (
    balance_at,
    list_current_balances,
    list_recent_balance_points,
    list_statement_entries,
)
from console.mixins import (
    LargeTableMixin,
    Operation,
    OperationsMixin,
    ReadOnlyAdminMixin,
)
from console.site import is_console_admin
from console.views import (
    audit_link,
    balance_charts,
    confirmation_page,
    csv_response,
    csv_text,
    report_wallet_error,
    require_admin,
    transaction_link,
)
from money.amounts import format_amount
from money.models import Currency
from transactions import services as money_services
from transactions.idempotency import IdempotencyRequest, IdempotentReplay, fingerprint
from transactions.selectors_admin import list_recent_transactions_for_user
from transactions.services.adjustments import AdjustmentKind
from wallet_project.errors import PermissionDeniedError, WalletError

admin.site.unregister(Group)  # roles live on the user; Django's groups and permissions are unused

RECENT_TRANSACTIONS = 20
CHART_POINTS = 200


def _freeze(request, user: User, reason: str) -> User:
    if user.pk == request.user.pk:
        raise PermissionDeniedError("You cannot freeze your own account.")
    return account_services.set_frozen(actor=request.user, user=user, frozen=True, reason=reason)


FREEZE = Operation(
    name="freeze",
    label="Freeze",
    perform=_freeze,
    applies_to=lambda user: user.is_active,
    lead=(
        "A frozen account can neither send nor receive money, and cannot log in. Its money "
        "stays where it is."
    ),
    list_lead="Frozen accounts can neither send, receive nor log in; their money stays put.",
    danger=True,
    max_selected=100,
)
UNFREEZE = Operation(
    name="unfreeze",
    label="Unfreeze",
    perform=lambda request, user, reason: account_services.set_frozen(
        actor=request.user, user=user, frozen=False, reason=reason
    ),
    applies_to=lambda user: not user.is_active,
    lead="The account can send, receive and log in again.",
    max_selected=100,
)


def _holdings_subquery() -> Subquery:
    """Every balance of the outer user as `"USD 10.500"` strings, in one correlated subquery."""
    holdings = (
        Balance.objects.filter(user_id=OuterRef("pk"))
        .order_by()
        .values("user_id")
        .annotate(
            items=ArrayAgg(
                Concat("currency_id", Value(" "), Cast("amount", CharField())),
                order_by="currency_id",
            )
        )
        .values("items")
    )
    return Subquery(holdings, output_field=ArrayField(CharField()))


def _format_holding(item: str) -> str:
    code, _, amount = item.partition(" ")
    return f"{format_amount(Decimal(amount), code)} {code}"


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@admin.register(User)
class UserAdmin(OperationsMixin, ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "username",
        "email",
        "role_column",
        "status_column",
        "holdings_column",
        "created_at",
    )
    list_display_links = ("id", "username")
    list_filter = ("role", "is_active", "is_superuser")
    search_fields = ("username", "email")
    search_help_text = "A user id, or part of a username or email."
    date_hierarchy = "created_at"
    ordering = ("-id",)
    sortable_by = ("id", "created_at")
    operations = (FREEZE, UNFREEZE)
    fieldsets = (
        (None, {"fields": ("username", "email", "role", "is_active")}),
        ("Access", {"fields": ("is_superuser", "is_staff", "last_login")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("created_at", "updated_at", "last_login")
    change_form_template = "admin/wallet/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(holdings=_holdings_subquery())

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="role", ordering="role")
    def role_column(self, obj: User) -> str:
        role = "superuser" if obj.is_superuser else obj.role
        return format_html('<span class="wallet-badge neutral">{}</span>', role)

    @admin.display(description="status", ordering="is_active")
    def status_column(self, obj: User) -> str:
        state = "active" if obj.is_active else "frozen"
        return format_html('<span class="wallet-badge {}">{}</span>', state, state)

    @admin.display(description="balances")
    def holdings_column(self, obj: User) -> str:
        items = getattr(obj, "holdings", None) or []
        if not items:
            return "-"
        return format_html_join(
            ", ", '<span class="wallet-amount">{}</span>', ((_format_holding(i),) for i in items)
        )

    # ------------------------------------------------------------ the user page

    def operation_summary(self, obj: User) -> list[tuple[str, object]]:
        return [
            ("User", f"{obj} (#{obj.pk}, {obj.email})"),
            ("Role", obj.role),
            ("Status now", "active" if obj.is_active else "frozen"),
        ]

    def operation_describe(self, obj: User) -> str:
        return f"{obj} (#{obj.pk}, {'active' if obj.is_active else 'frozen'})"

    def operation_done(self, obj: User, result, operation: Operation):
        return f"{obj} is now {'frozen' if operation is FREEZE else 'active'}."

    def object_links(self, request, obj: User) -> list[dict]:
        links = []
        if is_console_admin(request.user):
            links.append({"label": "Adjust balance", "url": self._page_url("adjust", obj)})
        links.append({"label": "Statement (CSV)", "url": self._page_url("statement", obj)})
        links.append(audit_link("user", obj.pk))
        return links

    def object_context(self, request, obj: User) -> dict:
        recent = []
        for txn in list_recent_transactions_for_user(user_id=obj.pk, limit=RECENT_TRANSACTIONS):
            incoming = txn.to_user_id == obj.pk
            recent.append(
                {
                    "txn": txn,
                    "link": transaction_link(txn.pk),
                    "sign": "+" if incoming else "-",
                    "amount": format_amount(txn.amount, txn.currency_id),
                    "counterparty": txn.from_user if incoming else txn.to_user,
                }
            )
        points = list_recent_balance_points(user_id=obj.pk, per_currency=CHART_POINTS)
        return {
            "wallet_sections": "admin/accounts/user/sections.html",
            "wallet_user": obj,
            "wallet_balances": [
                {
                    "currency": b.currency_id,
                    "amount": format_amount(b.amount, b.currency_id),
                    "entries": b.entry_count,
                    "last_updated_at": b.last_updated_at,
                }
                for b in list_current_balances(user_id=obj.pk)
            ],
            "wallet_recent": recent,
            "wallet_charts": balance_charts(points, now=timezone.now()),
            "transactions_url": reverse("admin:transactions_transaction_changelist")
            + f"?party={obj.pk}",
            "entries_url": reverse("admin:balances_balanceentry_changelist")
            + f"?user__id__exact={obj.pk}",
        }

    # ------------------------------------------------------------ adjustment and statement

    def get_urls(self):
        opts = self.model._meta
        wrap = self.admin_site.admin_view
        custom = [
            path(
                f"<path:object_id>/{page}/",
                wrap(view),
                name=f"{opts.app_label}_{opts.model_name}_{page}",
            )
            for page, view in (("adjust", self.adjust_view), ("statement", self.statement_view))
        ]
        return custom + super().get_urls()

    def _page_url(self, page: str, user: User) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=[user.pk])

    def _get_user_or_404(self, request, object_id) -> User:
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No such user.")
        return user

    def adjust_view(self, request, object_id):
        """Enter an adjustment, review it (balance before and after), then apply it."""
        require_admin(request)
        user = self._get_user_or_404(request, object_id)
        step = next((s for s in ("confirm", "review") if request.POST.get(s) == "yes"), None)
        form = AdjustmentForm(
            request.POST if step else None,
            currencies=list(Currency.objects.filter(enabled=True).values_list("code", flat=True)),
            initial={
                "token": uuid.uuid4().hex,
                "currency": settings.DEFAULT_CURRENCY,
                "direction": "credit",
            },
        )
        if step and form.is_valid():
            if step == "review":
                return self._review_adjustment(request, user, form)
            applied = self._apply_adjustment(request, user, form.cleaned_data)
            if applied:
                return HttpResponseRedirect(self._change_url(user))
        return confirmation_page(
            request,
            model_admin=self,
            title=f"Adjust the balance of {user}",
            lead=(
                "A manual adjustment (a chargeback, a correction, a goodwill credit, a fee) is "
                "recorded as a normal credit or debit with you as the actor. You review it "
                "before it is applied."
            ),
            form=form,
            summary=[("User", f"{user} (#{user.pk})")]
            + [
                (f"Balance {b.currency_id}", format_amount(b.amount, b.currency_id))
                for b in list_current_balances(user_id=user.pk)
            ],
            submit_label="Review the adjustment",
            cancel_url=self._change_url(user),
            original=user,
            step_name="review",
        )

    def _review_adjustment(self, request, user: User, form: AdjustmentForm):
        data = form.cleaned_data
        code = data["currency"]
        current = next(iter(list_current_balances(user_id=user.pk, currency=code)), None)
        before = current.amount if current else Decimal(0)
        after = before + (data["amount"] if data["direction"] == "credit" else -data["amount"])
        return confirmation_page(
            request,
            model_admin=self,
            title=f"Confirm the adjustment of {user}",
            lead="Check the adjustment; it is applied when you confirm.",
            form=forms.Form(),
            hidden_form=form,
            summary=[
                ("User", f"{user} (#{user.pk})"),
                ("Adjustment", f"{data['direction']} {format_amount(data['amount'], code)} {code}"),
                ("Kind", AdjustmentKind(data["kind"]).label),
                ("Reason", data["reason"]),
                ("Balance now", f"{format_amount(before, code)} {code}"),
                ("Balance after", f"{format_amount(after, code)} {code}"),
            ],
            submit_label="Apply the adjustment",
            cancel_url=self._change_url(user),
            original=user,
            danger=data["direction"] == "debit",
        )

    def _apply_adjustment(self, request, user: User, data: dict) -> bool:
        """Apply once per form token: a repeated submission replays instead of moving money."""
        body = {key: str(value) for key, value in data.items() if key != "token"}
        idempotency = IdempotencyRequest(
            user_id=request.user.pk,
            key=f"admin-adjustment:{data['token']}",
            fingerprint=fingerprint(method="POST", path=request.path, body=body),
            render=lambda txn: (201, {"id": str(txn.pk)}),
        )
        try:
            txn = money_services.adjust_balance(
                actor=request.user,
                user=user,
                direction=data["direction"],
                amount=data["amount"],
                currency=data["currency"],
                kind=data["kind"],
                reason=data["reason"],
                idempotency=idempotency,
            )
        except IdempotentReplay as replay:
            self.message_user(
                request,
                f"This adjustment was already applied (transaction {replay.transaction_id}).",
                messages.WARNING,
            )
            return True
        except WalletError as exc:
            report_wallet_error(self, request, exc, doing=f"adjust the balance of {user}")
            return False
        code = data["currency"]
        summary = f"{data['direction']} {format_amount(data['amount'], code)} {code}"
        self.log_change(request, user, f"Adjustment, {summary} ({data['kind']}): {data['reason']}")
        self.message_user(
            request,
            format_html(
                "Adjustment applied: {} for {} (transaction {}).",
                summary,
                user,
                transaction_link(txn.pk),
            ),
            messages.SUCCESS,
        )
        return True

    def statement_view(self, request, object_id):
        """A form for the period, then the CSV statement (auditors too: it only reads)."""
        user = self._get_user_or_404(request, object_id)
        today = timezone.localdate()
        form = StatementForm(
            request.GET or None,
            currencies=[b.currency_id for b in list_current_balances(user_id=user.pk)],
            initial={"start": today.replace(day=1), "end": today},
        )
        if form.is_bound and form.is_valid():
            return self._statement_csv(request, user, **form.cleaned_data)
        return confirmation_page(
            request,
            model_admin=self,
            title=f"Statement of {user}",
            lead=(
                "A CSV statement for one currency: the opening balance at the start of the "
                "first day, every balance change, and the closing balance at the end of the "
                "last day (UTC)."
            ),
            form=form,
            summary=[("User", f"{user} (#{user.pk})")],
            submit_label="Download CSV",
            cancel_url=self._change_url(user),
            original=user,
            method="get",
        )

    def _statement_csv(self, request, user: User, *, currency: str, start, end):
        period_start = _day_start(start)
        period_end = _day_start(end + timedelta(days=1))
        opening = balance_at(user_id=user.pk, currency=currency, at=period_start)
        closing = balance_at(user_id=user.pk, currency=currency, at=period_end)
        entries = list_statement_entries(
            user_id=user.pk, currency=currency, start=period_start, end=period_end
        )
        record_event(
            actor_id=request.user.pk,
            action="admin.statement_exported",
            entity_type="user",
            entity_id=user.pk,
            details={"currency": currency, "start": str(start), "end": str(end)},
        )
        rows = _statement_rows(
            entries,
            currency=currency,
            opening=(period_start, opening),
            closing=(period_end, closing),
        )
        filename = f"statement-{user.pk}-{currency}-{start}-{end}.csv"
        return csv_response(rows, filename=filename)


STATEMENT_COLUMNS = [
    "row",
    "date",
    "transaction_id",
    "type",
    "description",
    "counterparty",
    "amount",
    "balance",
]


def _statement_rows(entries, *, currency: str, opening: tuple, closing: tuple):
    """Opening row, one row per entry, closing row (whose amount is the period's net)."""
    opened_at, opening_amount = opening
    closed_at, closing_amount = closing
    yield STATEMENT_COLUMNS
    yield [
        "opening",
        opened_at.isoformat(),
        "",
        "",
        "Opening balance",
        "",
        "",
        format_amount(opening_amount, currency),
    ]
    for entry in entries.iterator(chunk_size=2000):
        txn = entry.transaction
        other = txn.from_user if entry.delta > 0 else txn.to_user
        yield [
            "entry",
            entry.created_at.isoformat(),
            str(txn.pk),
            txn.type,
            csv_text(txn.description),
            csv_text(other.username) if other else "external",
            format_amount(entry.delta, currency),
            format_amount(entry.balance_after, currency),
        ]
    yield [
        "closing",
        closed_at.isoformat(),
        "",
        "",
        "Closing balance",
        "",
        format_amount(closing_amount - opening_amount, currency),
        format_amount(closing_amount, currency),
    ]
