"""The console's audit pages: the event stream, its seals and reconciliation runs, read-only."""

import json

from django.contrib import admin
from django.db.models import F, Func, IntegerField
from django.urls import NoReverseMatch
from django.utils.html import format_html

from audit.models import AuditLog, AuditSeal, ReconciliationRun
from console.mixins import (
    LargeTableMixin,
    ReadOnlyAdminMixin,
    admin_link,
    choices_filter,
    timestamp_column,
)

ENTITY_TYPES = ["user", "transaction", "balance", "batch", "schedule", "export"]
KNOWN_ACTIONS = [
    "user.registered",
    "user.updated",
    "user.role_changed",
    "user.activated",
    "user.deactivated",
    "user.frozen",
    "user.unfrozen",
    "user.logged_in",
    "user.logged_out",
    "user.login_failed",
    "transaction.created",
    "transaction.completed",
    "transaction.failed",
    "transaction.reversed",
    "transaction.requeued",
    "transaction.cancelled",
    "balance.changed",
    "batch.created",
    "batch.started",
    "batch.completed",
    "batch.failed",
    "schedule.created",
    "schedule.paused",
    "schedule.resumed",
    "schedule.cancelled",
    "schedule.run_started",
    "schedule.run_completed",
    "schedule.run_failed",
    "admin.statement_exported",
    "admin.transactions_exported",
]

# Where an event's entity lives in the console.
_ENTITY_PAGES = {
    "user": "admin:accounts_user_change",
    "transaction": "admin:transactions_transaction_change",
    "balance": "admin:balances_balance_change",
    "batch": "admin:transactions_transferbatch_change",
    "schedule": "admin:transactions_scheduledtransfer_change",
}


def _pretty_json(value) -> str:
    return format_html(
        '<pre style="margin: 0; white-space: pre-wrap;">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, default=str),
    )


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = ("id", "created", "action", "entity", "actor", "request_id")
    list_select_related = ("actor",)
    list_filter = (
        choices_filter("entity_type", [(t, t) for t in ENTITY_TYPES], title="entity type"),
        choices_filter("action", [(a, a) for a in KNOWN_ACTIONS]),
    )
    search_fields = (
        "entity_id__exact",
        "request_id__exact",
        "action__exact",
        "actor__username__exact",
    )
    search_help_text = "An exact entity id, request id, action, or actor username."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    sortable_by = ("created",)
    created = timestamp_column("created_at")
    fields = (
        "id",
        "created",
        "action",
        "entity",
        "actor",
        "request_id",
        "client_ip",
        "details_pretty",
        "chain",
        "prev_hash",
        "hash",
        "txid",
    )
    readonly_fields = ("created", "entity", "details_pretty")

    @admin.display(description="entity")
    def entity(self, obj: AuditLog) -> str:
        label = f"{obj.entity_type}:{obj.entity_id}"
        page = _ENTITY_PAGES.get(obj.entity_type)
        if page is None:
            return label
        try:
            return admin_link(page, obj.entity_id, label)
        except NoReverseMatch:
            return label

    @admin.display(description="details")
    def details_pretty(self, obj: AuditLog) -> str:
        return _pretty_json(obj.details)


@admin.register(AuditSeal)
class AuditSealAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "xid_from", "xid_to", "event_count", "last_event_id")
    date_hierarchy = "created_at"
    list_filter = ("created_at",)
    search_fields = ("=hash",)
    ordering = ("-id",)
    show_full_result_count = False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "finished_at", "outcome", "problem_count", "duration")
    list_filter = ("ok",)
    date_hierarchy = "finished_at"
    search_fields = ("=id",)
    ordering = ("-id",)
    show_full_result_count = False
    fields = ("id", "started_at", "finished_at", "outcome", "checks_pretty", "problems_pretty")
    readonly_fields = ("outcome", "checks_pretty", "problems_pretty")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                problem_total=Func(
                    F("problems"), function="jsonb_array_length", output_field=IntegerField()
                )
            )
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term and not term.isdigit():
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="outcome", ordering="ok")
    def outcome(self, obj: ReconciliationRun) -> str:
        if obj.ok:
            return format_html('<span class="wallet-badge ok">{}</span>', "reconciled")
        return format_html('<span class="wallet-badge drift">{}</span>', "drift")

    @admin.display(description="problems", ordering="problem_total")
    def problem_count(self, obj: ReconciliationRun) -> int:
        return obj.problem_total

    @admin.display(description="duration (ms)")
    def duration(self, obj: ReconciliationRun):
        return (obj.checks or {}).get("duration_ms", "-")

    @admin.display(description="checks")
    def checks_pretty(self, obj: ReconciliationRun) -> str:
        return _pretty_json(obj.checks)

    @admin.display(description="problems")
    def problems_pretty(self, obj: ReconciliationRun) -> str:
        return _pretty_json(obj.problems)
