"""Transfer batches and their items: progress and per-item results, read-only."""

from django.contrib import admin
from django.db.models import Count
from django.urls import reverse

from console.mixins import (
    LargeTableMixin,
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
from transactions.models import BatchItemStatus, TransferBatch, TransferBatchItem

FAILED_ITEMS_SHOWN = 50


@admin.register(TransferBatch)
class TransferBatchAdmin(
    RecordColumnsMixin, OperationsMixin, ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin
):
    list_display = (
        "short_id",
        "owner_column",
        "atomic",
        "status_column",
        "progress",
        "succeeded",
        "failed",
        "created_at",
        "completed_at",
    )
    list_select_related = ("owner",)
    list_filter = ("status", "atomic")
    search_fields = ("=owner__username",)
    search_help_text = "A batch id, or the owner's exact username."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    change_form_template = "admin/wallet/change_form.html"
    fields = (
        "id",
        "owner_column",
        "atomic",
        "status_column",
        "progress",
        "succeeded",
        "failed",
        "created_at",
        "updated_at",
        "completed_at",
    )
    readonly_fields = ("owner_column", "status_column", "progress")

    @admin.display(description="owner")
    def owner_column(self, obj: TransferBatch) -> str:
        return user_link(obj.owner)

    @admin.display(description="processed")
    def progress(self, obj: TransferBatch) -> str:
        return f"{obj.processed} / {obj.total}"

    def object_links(self, request, obj: TransferBatch) -> list[dict]:
        items = reverse("admin:transactions_transferbatchitem_changelist")
        return [
            {"label": "All items", "url": f"{items}?batch__id__exact={obj.pk}"},
            audit_link("batch", obj.pk),
        ]

    def object_context(self, request, obj: TransferBatch) -> dict:
        items = TransferBatchItem.objects.filter(batch_id=obj.pk)
        by_status = dict(
            items.order_by()
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        failed = items.filter(status=BatchItemStatus.FAILED).order_by("index")[:FAILED_ITEMS_SHOWN]
        return {
            "wallet_sections": "admin/transactions/transferbatch/items.html",
            "item_counts": [
                (status, by_status.get(status, 0)) for status in BatchItemStatus.values
            ],
            "failed_items": [
                {"item": item, "amount": format_amount(item.amount, item.currency)}
                for item in failed
            ],
            "failed_shown": FAILED_ITEMS_SHOWN,
        }


@admin.register(TransferBatchItem)
class TransferBatchItemAdmin(
    RecordColumnsMixin, ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin
):
    uuid_search_field = "batch_id"
    list_display = (
        "batch_column",
        "index",
        "from_user_id",
        "to_user_id",
        "amount_column",
        "status_column",
        "transaction_column",
        "error_code",
        "error_message",
    )
    list_filter = ("status",)
    search_fields = ("=error_code",)
    search_help_text = "A batch id, or an exact error code."
    ordering = ("batch_id", "index")
    sortable_by = ("index",)
    fields = (
        "batch_column",
        "index",
        "from_user_id",
        "to_user_id",
        "amount_column",
        "description",
        "reference",
        "status_column",
        "transaction_column",
        "error_code",
        "error_message",
    )
    readonly_fields = ("batch_column", "amount_column", "status_column", "transaction_column")

    @admin.display(description="batch")
    def batch_column(self, obj: TransferBatchItem) -> str:
        return admin_link("admin:transactions_transferbatch_change", obj.batch_id)

    @admin.display(description="amount")
    def amount_column(self, obj: TransferBatchItem) -> str:
        return money_cell(obj.amount, obj.currency)

    @admin.display(description="transaction")
    def transaction_column(self, obj: TransferBatchItem) -> str:
        return transaction_link(obj.transaction_id)
