"""Console pages and the pieces the ModelAdmins share.

- the login form (entry by role) and the operations dashboard,
- the confirmation page every money or state change goes through (a required reason),
- CSV responses (streamed, safe against spreadsheet formulas),
- the server-side balance chart (inline SVG, no script, no CDN).
"""

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html
from django.views import View
from django.views.generic import TemplateView

from audit.models import AuditSeal
from audit.selectors import latest_reconciliation_summary
from console.mixins import admin_link
from console.site import is_console_admin, is_console_user
from money.amounts import format_amount
from transactions.models import TransactionStatus, TransactionType
from transactions.selectors import stalled_background_work
from transactions.selectors_admin import (
    ActivityRow,
    activity_between,
    count_pending_transactions,
    list_failed_scheduled_runs,
    list_pending_transactions,
    list_unfinished_batches,
)
from wallet_project.errors import WalletError
from wallet_project.health import read_or_none

# ---------------------------------------------------------------- login


class ConsoleAuthenticationForm(AdminAuthenticationForm):
    """The admin login, open to admins, superusers and auditors (by role, not `is_staff`)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct %(username)s and password for a back-office account."
        ),
    }

    def confirm_login_allowed(self, user) -> None:
        if not user.is_active:
            raise ValidationError(self.error_messages["inactive"], code="inactive")
        if not is_console_user(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class ConsolePasswordChangeForm(AdminPasswordChangeForm):
    """Changing one's own password goes through `accounts.services.update_user`, which
    checks the current password again, ends the user's API sessions and audits the change."""

    def save(self, commit: bool = True):
        from accounts import services as account_services

        return account_services.update_user(
            actor=self.user,
            user=self.user,
            password=self.cleaned_data["new_password1"],
            current_password=self.cleaned_data["old_password"],
        )


# ---------------------------------------------------------------- confirmation pages


class ReasonForm(forms.Form):
    """The reason every money or state change carries into its audit event."""

    reason = forms.CharField(
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Stored with the change in the audit trail.",
    )


def confirmation_page(
    request,
    *,
    model_admin,
    title: str,
    lead: str,
    form: forms.Form,
    submit_label: str,
    cancel_url: str,
    summary: Sequence[tuple[str, Any]] = (),
    objects: Iterable[Any] = (),
    action_name: str | None = None,
    selected_pks: Iterable[Any] = (),
    original: Any = None,
    hidden_form: forms.Form | None = None,
    danger: bool = False,
    step_name: str = "confirm",
    method: str = "post",
) -> TemplateResponse:
    """The page that asks "are you sure, and why?" before a change.

    For a changelist action, `action_name` and `selected_pks` post the choice back to the
    changelist; for an object view the form posts back to the view itself. `hidden_form`
    carries the values of a previous step (a reviewed adjustment) as hidden inputs, and
    `step_name` names the step the form submits (`confirm` applies the change). A `get`
    form (a download) has no step.
    """
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "lead": lead,
        "form": form,
        "hidden_form": hidden_form,
        "summary": summary,
        "objects": list(objects),
        "action_name": action_name,
        "selected_pks": [str(pk) for pk in selected_pks],
        "submit_label": submit_label,
        "cancel_url": cancel_url,
        "original": original,
        "danger": danger,
        "step_name": step_name,
        "method": method,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/wallet/confirm.html", context)


def confirmed_reason(request) -> tuple[ReasonForm, str | None]:
    """The reason form of a confirmation page, and its reason once confirmed and valid."""
    form = ReasonForm(request.POST if request.POST.get("confirm") == "yes" else None)
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["reason"]
    return form, None


def report_wallet_error(model_admin, request, exc: WalletError, *, doing: str) -> None:
    """Show a refused change to the staff member: what failed, the error code and message."""
    model_admin.message_user(
        request, f"Could not {doing}: {exc.message} ({exc.code})", messages.ERROR
    )


def require_admin(request) -> None:
    """Raise PermissionDenied unless the user may act (auditors read only)."""
    if not is_console_admin(request.user):
        raise PermissionDenied


# ---------------------------------------------------------------- links


def user_link(user) -> str:
    """A link to a user's console page, or `external` for the world account."""
    if user is None:
        return format_html('<span class="wallet-muted">{}</span>', "external")
    return admin_link("admin:accounts_user_change", user.pk, user)


def transaction_link(txn_id) -> str:
    """A link to a transaction's console page, labelled with the start of its id."""
    if txn_id is None:
        return "-"
    return admin_link("admin:transactions_transaction_change", txn_id)


def audit_link(entity_type: str, entity_id: object) -> dict:
    """The object-tools link to an entity's audit events."""
    url = reverse("admin:audit_auditlog_changelist")
    return {
        "label": "Audit events",
        "url": f"{url}?entity_type={entity_type}&entity_id__exact={entity_id}",
    }


def money_cell(amount, currency: str, *, with_code: bool = True) -> str:
    """An amount with its currency's digits, right-aligned by the console's stylesheet."""
    from money.amounts import format_amount

    text = format_amount(amount, currency)
    return format_html(
        '<span class="wallet-amount">{}</span>', f"{text} {currency}" if with_code else text
    )


# ---------------------------------------------------------------- CSV


class _Echo:
    """A file-like object whose `write` hands the line back, for streaming `csv.writer`."""

    def write(self, value: str) -> str:
        return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: Any) -> str:
    """Free text for a CSV cell, defused so a spreadsheet never runs it as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def csv_response(rows: Iterable[Sequence[Any]], *, filename: str) -> StreamingHttpResponse:
    """Stream `rows` as a CSV download (rows are produced lazily, so exports can be large)."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ---------------------------------------------------------------- balance chart


@dataclass
class BalanceChart:
    currency: str
    width: int
    height: int
    path: str
    dots: list[dict]
    y_ticks: list[dict]
    x_ticks: list[dict]
    latest: str
    changes: int
    plot_left: int = 0
    plot_right: int = 0
    plot_top: int = 0
    plot_bottom: int = 0


_W, _H = 640, 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 78, 12, 12, 26


def balance_charts(
    points_by_currency: dict[str, list[tuple[datetime, Decimal]]], *, now: datetime
) -> list[BalanceChart]:
    """One step chart per currency of `(time, balance after)` points, oldest first.

    The balance holds between changes, so the line is a staircase, extended to `now`.
    """
    return [
        _chart(currency, points, now=now)
        for currency, points in sorted(points_by_currency.items())
        if points
    ]


def _chart(currency: str, points: list[tuple[datetime, Decimal]], *, now: datetime) -> BalanceChart:
    start = points[0][0]
    end = max(now, points[-1][0])
    span = (end - start).total_seconds() or 1.0
    top = max(value for _, value in points)
    top = top * Decimal("1.1") if top > 0 else Decimal(1)
    plot_w = _W - _LEFT - _RIGHT
    plot_h = _H - _TOP - _BOTTOM

    def x(at: datetime) -> float:
        return round(_LEFT + plot_w * (at - start).total_seconds() / span, 1)

    def y(value: Decimal) -> float:
        return round(_TOP + plot_h * float(1 - value / top), 1)

    path = [f"M{x(start)},{y(points[0][1])}"]
    for at, value in points[1:]:
        path.append(f"H{x(at)}V{y(value)}")
    path.append(f"H{x(end)}")
    dots = [
        {
            "x": f"{x(at):.1f}",
            "y": f"{y(value):.1f}",
            "label": f"{at:%Y-%m-%d %H:%M} UTC: {format_amount(value, currency)} {currency}",
        }
        for at, value in points
    ]
    y_ticks = [
        {"y": f"{y(top * share):.1f}", "label": format_amount(top * share, currency)}
        for share in (Decimal(0), Decimal("0.5"), Decimal(1))
    ]
    x_ticks = [
        {"x": f"{x(start):.1f}", "label": f"{start:%Y-%m-%d}", "anchor": "start"},
        {"x": f"{x(end):.1f}", "label": f"{end:%Y-%m-%d}", "anchor": "end"},
    ]
    return BalanceChart(
        currency=currency,
        width=_W,
        height=_H,
        path="".join(path),
        dots=dots,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        latest=format_amount(points[-1][1], currency),
        changes=len(points),
        plot_left=_LEFT,
        plot_right=_W - _RIGHT,
        plot_top=_TOP,
        plot_bottom=_H - _BOTTOM,
    )


# ---------------------------------------------------------------- dashboard


def _day_bounds(day) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def _activity_tables(rows: list[ActivityRow]) -> dict[str, Any]:
    """Counts by type and status; money moved by currency and type (completed or reversed)."""
    types = [t.value for t in TransactionType]
    statuses = [s.value for s in TransactionStatus]
    counts = {t: dict.fromkeys(statuses, 0) for t in types}
    moved: dict[str, dict[str, Decimal]] = {}
    moved_counts: dict[str, int] = {}
    for row in rows:
        counts[row["type"]][row["status"]] += row["count"]
        if row["status"] in (TransactionStatus.COMPLETED, TransactionStatus.REVERSED):
            per_type = moved.setdefault(row["currency_id"], dict.fromkeys(types, Decimal(0)))
            per_type[row["type"]] += row["total"]
            moved_counts[row["currency_id"]] = (
                moved_counts.get(row["currency_id"], 0) + row["count"]
            )
    by_type = [
        {
            "type": t,
            "cells": [counts[t][s] for s in statuses],
            "total": sum(counts[t].values()),
        }
        for t in types
    ]
    status_totals = [sum(counts[t][s] for t in types) for s in statuses]
    by_currency = [
        {
            "currency": code,
            "count": moved_counts[code],
            "cells": [format_amount(per_type[t], code) for t in types],
            "total": format_amount(sum(per_type.values(), Decimal(0)), code),
        }
        for code, per_type in sorted(moved.items())
    ]
    return {
        "types": types,
        "statuses": statuses,
        "by_type": by_type,
        "status_totals": status_totals,
        "grand_total": sum(status_totals),
        "by_currency": by_currency,
    }


def _audit_trail_status() -> dict[str, Any] | None:
    seal = AuditSeal.objects.order_by("-id").first()
    if seal is None:
        return None
    return {"seal": seal, "covers_events": seal.event_count}


def _reconciliation() -> dict[str, Any] | None:
    summary = latest_reconciliation_summary()
    if summary is None:
        return None
    return {**summary, "finished_at": parse_datetime(summary["finished_at"])}


def index_summary() -> dict[str, Any]:
    """Headline figures for the console's front page (two small queries)."""
    return {
        "pending_count": count_pending_transactions(),
        "reconciliation": _reconciliation(),
    }


class DashboardView(TemplateView):
    """The operations dashboard: the day's activity, the pending queue, ledger health."""

    admin_site: AdminSite = admin.site  # the console's, given by `as_view(admin_site=...)`
    template_name = "admin/wallet/dashboard.html"

    def get_context_data(self, **kwargs):
        request = self.request
        day = parse_date(request.GET.get("day") or "") or timezone.localdate()
        start, end = _day_bounds(day)
        pending = list_pending_transactions(limit=10)
        now = timezone.now()
        reconciliation = _reconciliation()
        background = read_or_none(stalled_background_work)
        return {
            **super().get_context_data(**kwargs),
            **self.admin_site.each_context(request),
            "title": "Operations dashboard",
            "day": day,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1) if day < timezone.localdate() else None,
            "activity": _activity_tables(activity_between(start=start, end=end)),
            "day_start": start,
            "day_end": end,
            "pending": [
                {
                    "txn": txn,
                    "amount": format_amount(txn.amount, txn.currency_id),
                    "age": now - txn.created_at,
                }
                for txn in pending
            ],
            "pending_count": count_pending_transactions(),
            "failed_runs": [
                {
                    "run": run,
                    "amount": format_amount(run.schedule.amount, run.schedule.currency_id),
                }
                for run in list_failed_scheduled_runs(limit=10)
            ],
            "unfinished_batches": list_unfinished_batches(limit=10),
            "reconciliation": reconciliation,
            "audit_chain": (reconciliation or {}).get("checks", {}).get("audit_chain"),
            "audit_trail": _audit_trail_status(),
            "background": background,
            "background_ok": bool(
                background and all(stall["status"] == "ok" for stall in background.values())
            ),
        }


class RunReconciliationView(View):
    """Run the ledger and audit-trail reconciliation now (admins), then show the dashboard."""

    admin_site: AdminSite = admin.site  # the console's, given by `as_view(admin_site=...)`
    http_method_names = ["post"]

    def post(self, request):
        from audit.reconciliation import reconcile

        require_admin(request)
        run = reconcile()
        level = messages.SUCCESS if run.ok else messages.ERROR
        verdict = "the ledger reconciles" if run.ok else f"{len(run.problems)} problem(s) found"
        messages.add_message(request, level, f"Reconciliation #{run.pk}: {verdict}.")
        return HttpResponseRedirect(reverse("admin:dashboard", current_app=self.admin_site.name))
