"""Scheduled transfers and their runs: read-only pages; pause, resume and cancel, confirmed."""

from django.contrib import admin
from django.urls import reverse

from console.mixins import (
    LargeTableMixin,
    Operation,
    OperationsMixin,
    ReadOnlyAdminMixin,
    RecordColumnsMixin,
    admin_link,
)
from console.views import (
    audit_link,
    money_cell,
    transaction_link,
    user_link,
)
from money.amounts import format_amount
from transactions import services
from transactions.models import ScheduledRun, ScheduledTransfer, ScheduleStatus

RUNS_SHOWN = 50

PAUSE = Operation(
    name="pause",
    label="Pause",
    perform=lambda request, schedule, reason: services.pause_schedule(
        actor=request.user, schedule_id=schedule.pk, reason=reason
    ),
    applies_to=lambda schedule: schedule.status == ScheduleStatus.ACTIVE,
    lead="A paused schedule runs no more until it is resumed. A run already claimed finishes.",
)
# The resume service records who resumed; the reason is kept in the console's history.
RESUME = Operation(
    name="resume",
    label="Resume",
    perform=lambda request, schedule, reason: services.resume_schedule(
        actor=request.user, schedule_id=schedule.pk, reason=reason
    ),
    applies_to=lambda schedule: schedule.status == ScheduleStatus.PAUSED,
    lead=(
        "The schedule runs again from its next occurrence; occurrences missed while it was "
        "paused are skipped, and its failure count starts again from zero."
    ),
)
CANCEL = Operation(
    name="cancel",
    label="Cancel",
    perform=lambda request, schedule, reason: services.cancel_schedule(
        actor=request.user, schedule_id=schedule.pk, reason=reason
    ),
    applies_to=lambda schedule: schedule.status in (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED),
    lead="A cancelled schedule never runs again; this cannot be undone. A claimed run finishes.",
    danger=True,
)


@admin.register(ScheduledTransfer)
class ScheduledTransferAdmin(
    RecordColumnsMixin, OperationsMixin, ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin
):
    list_display = (
        "short_id",
        "from_party",
        "to_party",
        "amount_column",
        "interval",
        "status_column",
        "next_run_at",
        "run_count",
        "consecutive_failures",
        "created_at",
    )
    list_select_related = ("from_user", "to_user")
    list_filter = ("status", "interval", "currency")
    search_fields = ("=from_user__username", "=to_user__username")
    search_help_text = "A schedule id, or a party's exact username."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    operations = (PAUSE, RESUME, CANCEL)
    change_form_template = "admin/wallet/change_form.html"
    fieldsets = (
        (None, {"fields": ("id", "status_column", "amount_column", "description")}),
        ("Parties", {"fields": ("from_party", "to_party", "created_by")}),
        ("Calendar", {"fields": ("interval", "run_at", "end_at", "next_run_at")}),
        ("Runs", {"fields": ("run_count", "consecutive_failures")}),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("status_column", "amount_column", "from_party", "to_party")

    @admin.display(description="amount")
    def amount_column(self, obj: ScheduledTransfer) -> str:
        return money_cell(obj.amount, obj.currency_id)

    @admin.display(description="from")
    def from_party(self, obj: ScheduledTransfer) -> str:
        return user_link(obj.from_user)

    @admin.display(description="to")
    def to_party(self, obj: ScheduledTransfer) -> str:
        return user_link(obj.to_user)

    def operation_label(self, obj: ScheduledTransfer) -> str:
        return f"schedule {str(obj.pk)[:8]}"

    def operation_summary(self, obj: ScheduledTransfer) -> list[tuple[str, object]]:
        return [
            ("Schedule", str(obj.pk)),
            ("Transfer", f"{format_amount(obj.amount, obj.currency_id)} {obj.currency_id}"),
            ("From", obj.from_user),
            ("To", obj.to_user),
            ("Every", obj.interval or "once"),
            ("Status", obj.status),
            ("Next run", obj.next_run_at or "-"),
        ]

    def object_links(self, request, obj: ScheduledTransfer) -> list[dict]:
        runs = reverse("admin:transactions_scheduledrun_changelist")
        return [
            {"label": "All runs", "url": f"{runs}?schedule__id__exact={obj.pk}"},
            audit_link("schedule", obj.pk),
        ]

    def object_context(self, request, obj: ScheduledTransfer) -> dict:
        runs = ScheduledRun.objects.filter(schedule_id=obj.pk).order_by("-run_number")
        return {
            "wallet_sections": "admin/transactions/scheduledtransfer/runs.html",
            "runs": [
                {"run": run, "transaction": transaction_link(run.transaction_id)}
                for run in runs[:RUNS_SHOWN]
            ],
            "runs_shown": RUNS_SHOWN,
        }


@admin.register(ScheduledRun)
class ScheduledRunAdmin(RecordColumnsMixin, ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    uuid_search_field = "schedule_id"
    list_display = (
        "id",
        "schedule_column",
        "run_number",
        "run_at",
        "status_column",
        "transaction_column",
        "error_code",
        "finished_at",
    )
    list_filter = ("status",)
    search_fields = ("=error_code",)
    search_help_text = "A schedule id, or an exact error code."
    date_hierarchy = "run_at"
    ordering = ("-id",)
    sortable_by = ("id",)
    fields = (
        "id",
        "schedule_column",
        "run_number",
        "run_at",
        "status_column",
        "transaction_column",
        "error_code",
        "error_message",
        "created_at",
        "finished_at",
    )
    readonly_fields = ("schedule_column", "status_column", "transaction_column")

    @admin.display(description="schedule")
    def schedule_column(self, obj: ScheduledRun) -> str:
        return admin_link("admin:transactions_scheduledtransfer_change", obj.schedule_id)

    @admin.display(description="transaction")
    def transaction_column(self, obj: ScheduledRun) -> str:
        return transaction_link(obj.transaction_id)
