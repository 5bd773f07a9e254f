"""The console's user pages: who holds what, recent activity, freeze, adjust, statements.

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
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services as account_services
from accounts.models import User
from audit.services import record_event
from balances.models import Balance
from balances.selectors import (
    balance_at,
    list_current_balances,
    list_recent_balance_points,
    list_statement_entries,
)
from transactions import services as money_services
from transactions.idempotency import IdempotencyRequest, IdempotentReplay, fingerprint
from transactions.models import Currency
from transactions.money import format_amount, parse_amount
from transactions.selectors_admin import list_recent_transactions_for_user
from transactions.services.adjustments import AdjustmentKind
from wallet_project.admin_mixins import LargeTableMixin, ReadOnlyAdminMixin
from wallet_project.admin_site import is_console_admin
from wallet_project.admin_views import (
    balance_charts,
    confirmation_page,
    confirmed_reason,
    csv_response,
    csv_text,
    report_wallet_error,
    require_admin,
)
from wallet_project.errors import WalletError

admin.site.unregister(Group)  # roles live on the user; Django's groups and permissions are unused


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


class AdjustmentForm(forms.Form):
    direction = forms.ChoiceField(
        choices=[
            ("credit", "Credit: add money to the account"),
            ("debit", "Debit: take money from the account"),
        ],
        widget=forms.RadioSelect,
    )
    currency = forms.ChoiceField()
    amount = forms.CharField(max_length=40, help_text="A decimal amount, such as 25.00.")
    kind = forms.ChoiceField(choices=AdjustmentKind.choices, label="Kind")
    reason = forms.CharField(
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Becomes the transaction's description and is kept in the audit trail.",
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, currencies: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(code, code) for code in currencies]

    def clean(self):
        data = super().clean()
        if "amount" in data and "currency" in data:
            try:
                data["amount"] = parse_amount(data["amount"], data["currency"])
            except (ValueError, WalletError) as exc:
                self.add_error("amount", str(exc))
        return data


class StatementForm(forms.Form):
    currency = forms.ChoiceField()
    start = forms.DateField(
        label="From (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, currencies: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(code, code) for code in currencies]

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end date must not be before the start date.")
        return data


@admin.register(User)
class UserAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "username",
        "email",
        "role_badge",
        "status_badge",
        "holdings_column",
        "created_at",
    )
    list_display_links = ("id", "username")
    list_filter = ("role", "is_active", "is_superuser")
    search_fields = ("username", "email")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    sortable_by = ("id", "created_at")
    actions = ("freeze_selected", "unfreeze_selected")
    fieldsets = (
        (None, {"fields": ("username", "email", "role", "is_active")}),
        ("Access", {"fields": ("is_superuser", "is_staff", "last_login")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("created_at", "updated_at", "last_login")
    change_form_template = "admin/accounts/user/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(holdings=_holdings_subquery())

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="Role", ordering="role")
    def role_badge(self, obj: User) -> str:
        role = "superuser" if obj.is_superuser else obj.role
        return format_html('<span class="wallet-badge neutral">{}</span>', role)

    @admin.display(description="Status", ordering="is_active")
    def status_badge(self, obj: User) -> str:
        if obj.is_active:
            return format_html('<span class="wallet-badge active">{}</span>', "active")
        return format_html('<span class="wallet-badge frozen">{}</span>', "frozen")

    @admin.display(description="Balances")
    def holdings_column(self, obj: User) -> str:
        items = getattr(obj, "holdings", None) or []
        if not items:
            return "-"
        return format_html_join(
            ", ", '<span class="wallet-amount">{}</span>', ((_format_holding(i),) for i in items)
        )

    # ------------------------------------------------------------ the user page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        user = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if user is not None:
            context.update(self._user_page_context(request, user))
        return super().change_view(request, object_id, form_url, context)

    def _user_page_context(self, request, user: User) -> dict:
        balances = [
            {
                "currency": b.currency_id,
                "amount": format_amount(b.amount, b.currency_id),
                "entries": b.entry_count,
                "last_updated_at": b.last_updated_at,
            }
            for b in list_current_balances(user_id=user.pk)
        ]
        recent = []
        for txn in list_recent_transactions_for_user(user_id=user.pk, limit=20):
            incoming = txn.to_user_id == user.pk
            other = txn.from_user if incoming else txn.to_user
            recent.append(
                {
                    "txn": txn,
                    "sign": "+" if incoming else "-",
                    "amount": format_amount(txn.amount, txn.currency_id),
                    "counterparty": other,
                }
            )
        charts = balance_charts(
            list_recent_balance_points(user_id=user.pk, per_currency=200), now=timezone.now()
        )
        opts = self.model._meta
        return {
            "wallet_user": user,
            "wallet_balances": balances,
            "wallet_recent": recent,
            "wallet_charts": charts,
            "can_act": is_console_admin(request.user),
            "is_self": user.pk == request.user.pk,
            "transactions_url": reverse("admin:transactions_transaction_changelist")
            + f"?party={user.pk}",
            "entries_url": reverse("admin:balances_balanceentry_changelist")
            + f"?user__id__exact={user.pk}",
            "audit_url": reverse("admin:audit_auditlog_changelist")
            + f"?entity_type=user&entity_id__exact={user.pk}",
            "freeze_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_freeze", args=[user.pk]
            ),
            "unfreeze_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_unfreeze", args=[user.pk]
            ),
            "adjust_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_adjust", args=[user.pk]
            ),
            "statement_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_statement", args=[user.pk]
            ),
        }

    # ------------------------------------------------------------ custom pages

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        wrap = self.admin_site.admin_view
        custom = [
            path(
                "<path:object_id>/freeze/",
                wrap(self.freeze_view),
                {"frozen": True},
                name=f"{name}_freeze",
            ),
            path(
                "<path:object_id>/unfreeze/",
                wrap(self.freeze_view),
                {"frozen": False},
                name=f"{name}_unfreeze",
            ),
            path("<path:object_id>/adjust/", wrap(self.adjust_view), name=f"{name}_adjust"),
            path(
                "<path:object_id>/statement/", wrap(self.statement_view), name=f"{name}_statement"
            ),
        ]
        return custom + super().get_urls()

    def _get_user_or_404(self, request, object_id) -> User:
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No such user.")
        return user

    def _change_url(self, user: User) -> str:
        return reverse("admin:accounts_user_change", args=[user.pk])

    def freeze_view(self, request, object_id, frozen: bool):
        require_admin(request)
        user = self._get_user_or_404(request, object_id)
        verb = "freeze" if frozen else "unfreeze"
        if frozen and user.pk == request.user.pk:
            self.message_user(request, "You cannot freeze your own account.", messages.ERROR)
            return HttpResponseRedirect(self._change_url(user))
        form, reason = confirmed_reason(request)
        if reason is not None:
            if self._set_frozen(request, user, frozen=frozen, reason=reason):
                self.message_user(request, f"{user} is now {'frozen' if frozen else 'active'}.")
            return HttpResponseRedirect(self._change_url(user))
        lead = (
            f"Freeze {user}? A frozen account can neither send nor receive money, and cannot "
            "log in. Its money stays where it is."
            if frozen
            else f"Unfreeze {user}? The account can send, receive and log in again."
        )
        return confirmation_page(
            request,
            model_admin=self,
            title=f"{verb.capitalize()} {user}",
            lead=lead,
            form=form,
            summary=[
                ("User", f"{user} (#{user.pk}, {user.email})"),
                ("Status now", "active" if user.is_active else "frozen"),
            ],
            submit_label=f"Yes, {verb} the account",
            cancel_url=self._change_url(user),
            original=user,
            danger=frozen,
        )

    def _set_frozen(self, request, user: User, *, frozen: bool, reason: str) -> bool:
        verb = "freeze" if frozen else "unfreeze"
        try:
            account_services.set_frozen(actor=request.user, user=user, frozen=frozen, reason=reason)
        except WalletError as exc:
            report_wallet_error(self, request, exc, doing=f"{verb} {user}")
            return False
        self.log_change(request, user, f"{verb.capitalize()}: {reason}")
        return True

    @admin.action(description="Freeze selected users", permissions=["act"])
    def freeze_selected(self, request, queryset):
        return self._freeze_action(request, queryset, frozen=True)

    @admin.action(description="Unfreeze selected users", permissions=["act"])
    def unfreeze_selected(self, request, queryset):
        return self._freeze_action(request, queryset, frozen=False)

    def _freeze_action(self, request, queryset, *, frozen: bool):
        verb = "freeze" if frozen else "unfreeze"
        users = list(queryset.order_by("pk")[:101])
        if len(users) > 100:
            self.message_user(
                request, f"Select at most 100 users to {verb} at once.", messages.ERROR
            )
            return None
        form, reason = confirmed_reason(request)
        if reason is not None:
            done = 0
            for user in users:
                if frozen and user.pk == request.user.pk:
                    self.message_user(
                        request, "You cannot freeze your own account.", messages.ERROR
                    )
                    continue
                done += self._set_frozen(request, user, frozen=frozen, reason=reason)
            if done:
                self.message_user(request, f"{verb.capitalize()}: {done} user(s).")
            return None
        return confirmation_page(
            request,
            model_admin=self,
            title=f"{verb.capitalize()} users",
            lead=f"{verb.capitalize()} these accounts? Every change is kept in the audit trail with your reason.",
            form=form,
            objects=[f"{u} (#{u.pk}, {'active' if u.is_active else 'frozen'})" for u in users],
            action_name=f"{verb}_selected",
            selected_pks=[u.pk for u in users],
            submit_label=f"Yes, {verb} them",
            cancel_url=request.get_full_path(),
            danger=frozen,
        )

    def adjust_view(self, request, object_id):
        require_admin(request)
        user = self._get_user_or_404(request, object_id)
        currencies = list(Currency.objects.filter(enabled=True).values_list("code", flat=True))
        step = "review" if request.POST.get("review") == "yes" else None
        step = "confirm" if request.POST.get("confirm") == "yes" else step
        form = AdjustmentForm(
            request.POST if step else None,
            currencies=currencies,
            initial={
                "token": uuid.uuid4().hex,
                "currency": settings.DEFAULT_CURRENCY,
                "direction": "credit",
            },
        )
        if step and form.is_valid():
            data = form.cleaned_data
            if step == "confirm":
                response = self._apply_adjustment(request, user, data)
                if response is not None:
                    return response
            else:
                return self._review_adjustment(request, user, form)
        return confirmation_page(
            request,
            model_admin=self,
            title=f"Adjust the balance of {user}",
            lead=(
                "A manual adjustment (a chargeback, a correction, a goodwill credit, a fee) is "
                "recorded as a normal credit or debit with you as the actor. You will review it "
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
        now_amount = current.amount if current else Decimal(0)
        delta = data["amount"] if data["direction"] == "credit" else -data["amount"]
        return confirmation_page(
            request,
            model_admin=self,
            title=f"Confirm the adjustment of {user}",
            lead="Check the adjustment. It is applied when you confirm.",
            form=forms.Form(),
            hidden_form=form,
            summary=[
                ("User", f"{user} (#{user.pk})"),
                ("Adjustment", f"{data['direction']} {format_amount(data['amount'], code)} {code}"),
                ("Kind", AdjustmentKind(data["kind"]).label),
                ("Reason", data["reason"]),
                ("Balance now", f"{format_amount(now_amount, code)} {code}"),
                ("Balance after", f"{format_amount(now_amount + delta, code)} {code}"),
            ],
            submit_label="Apply the adjustment",
            cancel_url=self._change_url(user),
            original=user,
            danger=data["direction"] == "debit",
        )

    def _apply_adjustment(self, request, user: User, data: dict):
        body = {k: str(v) for k, v in data.items() if k != "token"}
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
            return HttpResponseRedirect(self._change_url(user))
        except WalletError as exc:
            report_wallet_error(self, request, exc, doing=f"adjust the balance of {user}")
            return None
        code = data["currency"]
        summary = f"{data['direction']} {format_amount(data['amount'], code)} {code}"
        self.log_change(request, user, f"Adjustment {summary} ({data['kind']}): {data['reason']}")
        self.message_user(
            request,
            format_html(
                'Adjustment applied: {} to {} (<a href="{}">transaction {}</a>).',
                summary,
                user,
                reverse("admin:transactions_transaction_change", args=[txn.pk]),
                str(txn.pk)[:8],
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self._change_url(user))

    def statement_view(self, request, object_id):
        user = self._get_user_or_404(request, object_id)
        currencies = [b.currency_id for b in list_current_balances(user_id=user.pk)]
        today = timezone.localdate()
        form = StatementForm(
            request.GET or None,
            currencies=currencies,
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
                "first day, every balance change, and the closing balance at the end of the last "
                "day (UTC)."
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

        def rows():
            yield [
                "row",
                "date",
                "transaction_id",
                "type",
                "description",
                "counterparty",
                "amount",
                "balance",
            ]
            yield [
                "opening",
                period_start.isoformat(),
                "",
                "",
                "Opening balance",
                "",
                "",
                format_amount(opening, currency),
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
                period_end.isoformat(),
                "",
                "",
                "Closing balance",
                "",
                format_amount(closing - opening, currency),
                format_amount(closing, currency),
            ]

        filename = f"statement-{user.username}-{currency}-{start}-{end}.csv"
        return csv_response(rows(), filename=filename)


class _TokenAdminBase(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    """JWT bookkeeping, read-only; the token itself is never shown."""

    def has_module_permission(self, request) -> bool:
        return is_console_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_console_admin(request.user)


admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


@admin.register(OutstandingToken)
class OutstandingTokenAdmin(_TokenAdminBase):
    list_display = ("jti", "user", "created_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("=jti", "=user__username")
    date_hierarchy = "created_at"
    list_filter = ("expires_at",)
    ordering = ("-id",)
    fields = ("jti", "user", "created_at", "expires_at")


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(_TokenAdminBase):
    list_display = ("token_jti", "token_user", "blacklisted_at")
    list_select_related = ("token__user",)
    search_fields = ("=token__jti", "=token__user__username")
    date_hierarchy = "blacklisted_at"
    list_filter = ("blacklisted_at",)
    ordering = ("-id",)
    fields = ("token", "blacklisted_at")

    @admin.display(description="jti")
    def token_jti(self, obj: BlacklistedToken) -> str:
        return obj.token.jti

    @admin.display(description="user")
    def token_user(self, obj: BlacklistedToken):
        return obj.token.user
