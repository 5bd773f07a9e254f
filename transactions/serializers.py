"""Transaction shapes: inputs parse strictly, outputs render amounts with the currency's digits."""

import copy
from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from money.amounts import currency_info, format_amount, parse_amount
from money.fields import AmountField, CurrencyField, MoneyInputMixin
from transactions.models import (
    BatchItemStatus,
    ScheduledRun,
    ScheduledTransfer,
    ScheduleInterval,
    Transaction,
    TransactionStatus,
    TransactionType,
    TransferBatch,
)
from transactions.services.batches import MAX_ITEMS, BatchItemInput
from wallet_project.errors import ValidationFailedError


class CopiedFieldsMixin:
    """Serializer mixin: each instance's fields are shallow copies of the declared ones.

    DRF deep-copies every declared field for every serializer instance, which rebuilds
    each field from its constructor arguments: for a money movement's input that costs
    more than parsing it. A shallow copy gets its own binding (name, parent, source) and
    shares what no request changes (validators, error messages, choices).
    """

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class _MovementInput(CopiedFieldsMixin, MoneyInputMixin, serializers.Serializer):
    amount = AmountField(help_text='Decimal string such as "10.50" (JSON numbers are exact).')
    currency = CurrencyField(help_text="ISO 4217 code; defaults to USD.")
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )
    reference = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=False, default=None
    )


class CreditInputSerializer(_MovementInput):
    user_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Admins only: the account to credit."
    )


class DebitInputSerializer(CreditInputSerializer):
    pass


class TransferInputSerializer(_MovementInput):
    to_user_id = serializers.IntegerField(min_value=1)
    from_user_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Admins only: the paying account."
    )


class ReverseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class ScheduleFilterSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1)


class HistoryFilterSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1)
    type = serializers.ChoiceField(choices=TransactionType.choices, required=False)
    status = serializers.ChoiceField(choices=TransactionStatus.choices, required=False)
    currency = CurrencyField()
    to = serializers.DateTimeField(required=False)
    min_amount = serializers.DecimalField(max_digits=24, decimal_places=3, required=False)
    max_amount = serializers.DecimalField(max_digits=24, decimal_places=3, required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(required=False)
        return fields


def _timestamp(value: datetime | None) -> str | None:
    """A timestamp as DRF's DateTimeField renders it: ISO 8601 in UTC, with a `Z`."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class TransactionSerializer(serializers.ModelSerializer):
    """A transaction; `balance_after` only on POST responses and only for its owner or an admin."""

    currency = serializers.CharField(source="currency_id")
    amount = serializers.SerializerMethodField()
    from_user_id = serializers.IntegerField(allow_null=True)
    to_user_id = serializers.IntegerField(allow_null=True)
    reversal_of = serializers.UUIDField(source="reversal_of_id", allow_null=True)
    reversed_by = serializers.SerializerMethodField()
    balance_after = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = (
            "id",
            "type",
            "status",
            "from_user_id",
            "to_user_id",
            "amount",
            "currency",
            "description",
            "reference",
            "created_at",
            "completed_at",
            "reversal_of",
            "reversed_by",
            "failure_code",
            "balance_after",
        )
        read_only_fields = fields

    def to_representation(self, obj: Transaction) -> dict:
        # The declared fields describe the shape (schema, docs); this builds the same dict
        # directly, because building the fields on every response costs more than the
        # movement's own SQL. tests/transactions/test_serializers.py holds the two equal.
        currency = obj.currency_id
        return {
            "id": str(obj.pk),
            "type": obj.type,
            "status": obj.status,
            "from_user_id": obj.from_user_id,
            "to_user_id": obj.to_user_id,
            "amount": format_amount(obj.amount, currency),
            "currency": currency,
            "description": obj.description,
            "reference": obj.reference,
            "created_at": _timestamp(obj.created_at),
            "completed_at": _timestamp(obj.completed_at),
            "reversal_of": str(obj.reversal_of_id) if obj.reversal_of_id else None,
            "reversed_by": self.get_reversed_by(obj),
            "failure_code": obj.failure_code,
            "balance_after": self.get_balance_after(obj),
        }

    def field_representation(self, obj: Transaction) -> dict:
        """The same dict built by the declared fields (DRF's own path)."""
        return super().to_representation(obj)

    def get_amount(self, obj: Transaction) -> str:
        return format_amount(obj.amount, obj.currency_id)

    def get_reversed_by(self, obj: Transaction) -> str | None:
        known = getattr(obj, "reversed_by_id_cache", None)
        if known:
            return known
        if obj._state.adding:  # built in memory by a service just now: nothing reverses it yet
            return None
        try:
            return str(obj.reversed_by.pk)
        except Transaction.DoesNotExist:
            return None

    def get_balance_after(self, obj: Transaction) -> str | None:
        amount = getattr(obj, "balance_after", None)
        owner = getattr(obj, "balance_owner_id", None)
        viewer = self.context.get("viewer")
        if amount is None or viewer is None:
            return None
        if viewer.pk != owner and not viewer.is_admin:
            return None
        return format_amount(amount, obj.currency_id)


# ---------------------------------------------------------------- batches


def _user_id(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError("A valid integer is required.")
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError("A valid integer is required.") from exc
    if value < 1:
        raise ValueError("Ensure this value is greater than or equal to 1.")
    return value


def _text(raw: object, *, limit: int, nullable: bool) -> str | None:
    if raw is None and nullable:
        return None
    if not isinstance(raw, str):
        raise ValueError("Not a valid string.")
    if nullable and not raw:
        raise ValueError("This field may not be blank.")
    if len(raw) > limit:
        raise ValueError(f"Ensure this field has no more than {limit} characters.")
    return raw


def parse_batch_item(raw: object) -> tuple[BatchItemInput | None, dict[str, list[str]]]:
    """Check one batch item's shape; returns the item or its errors by field.

    Written by hand rather than as a nested serializer: 10,000 items are checked in a
    few milliseconds, with the same rules and messages as a single transfer's fields.
    """
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each item must be an object."]}
    errors: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    for field, parse, required in (
        ("to_user_id", _user_id, True),
        ("from_user_id", _user_id, False),
        ("description", lambda v: _text(v, limit=500, nullable=False), False),
        ("reference", lambda v: _text(v, limit=255, nullable=True), False),
    ):
        if field not in raw:
            if required:
                errors[field] = ["This field is required."]
            continue
        try:
            values[field] = parse(raw[field])
        except ValueError as exc:
            errors[field] = [str(exc)]
    currency = raw.get("currency") or settings.DEFAULT_CURRENCY
    if not isinstance(currency, str) or not _currency_enabled(currency):
        errors["currency"] = [f"'{currency}' is not a supported currency."]
    elif "amount" not in raw:
        errors["amount"] = ["This field is required."]
    else:
        try:
            values["amount"] = parse_amount(raw["amount"], currency)
        except ValueError as exc:
            errors["amount"] = [str(exc)]
    if errors:
        return None, errors
    return BatchItemInput(currency=currency, **values), {}


def _currency_enabled(code: str) -> bool:
    try:
        currency_info(code)
    except ValidationFailedError:
        return False
    return True


class BatchInputSerializer(serializers.Serializer):
    """`{items: [...], atomic}`; a malformed item rejects the request, errors keyed by index."""

    items = serializers.ListField(
        child=serializers.JSONField(),
        min_length=1,
        max_length=MAX_ITEMS,
        help_text=f"1 to {MAX_ITEMS} transfers.",
    )
    atomic = serializers.BooleanField(default=False, help_text="Apply all items or none.")

    def validate(self, attrs):
        parsed, errors = [], {}
        for index, raw in enumerate(attrs["items"]):
            item, problems = parse_batch_item(raw)
            if problems:
                errors[str(index)] = problems
            parsed.append(item)
        if errors:
            raise serializers.ValidationError(errors)
        attrs["items"] = parsed
        return attrs


class BatchSerializer(serializers.ModelSerializer):
    """A batch's progress."""

    class Meta:
        model = TransferBatch
        fields = (
            "id",
            "status",
            "atomic",
            "total",
            "processed",
            "succeeded",
            "failed",
            "created_at",
            "completed_at",
        )
        read_only_fields = fields


class BatchItemErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class BatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=BatchItemStatus.choices)
    transaction_id = serializers.UUIDField(allow_null=True)
    error = BatchItemErrorSerializer(allow_null=True)


class BatchDetailSerializer(BatchSerializer):
    """A batch's progress and every item's outcome (`context["items"]`, rendered directly)."""

    items = serializers.SerializerMethodField()

    class Meta(BatchSerializer.Meta):
        fields = (*BatchSerializer.Meta.fields, "items")
        read_only_fields = fields

    @extend_schema_field(BatchItemResultSerializer(many=True))
    def get_items(self, obj: TransferBatch) -> list[dict]:
        return [
            {
                "index": index,
                "status": status,
                "transaction_id": str(txn_id) if txn_id else None,
                "error": {"code": code, "message": message} if code else None,
            }
            for index, status, txn_id, code, message in self.context["items"]
        ]


# ---------------------------------------------------------------- scheduled transfers


class ScheduleInputSerializer(MoneyInputMixin, serializers.Serializer):
    to_user_id = serializers.IntegerField(min_value=1)
    from_user_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Admins only: the paying account."
    )
    amount = AmountField(help_text='Decimal string such as "10.50".')
    currency = CurrencyField(help_text="ISO 4217 code; defaults to USD.")
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )
    run_at = serializers.DateTimeField(
        help_text="The first (or only) run; not in the past (5 minutes of clock skew allowed)."
    )
    interval = serializers.ChoiceField(
        choices=ScheduleInterval.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="Omit for a one-time transfer.",
    )
    end_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="No run after this instant."
    )


class ScheduledRunSerializer(serializers.ModelSerializer):
    transaction_id = serializers.UUIDField(allow_null=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = ScheduledRun
        fields = ("run_number", "run_at", "transaction_id", "status", "error")
        read_only_fields = fields

    @extend_schema_field(BatchItemErrorSerializer(allow_null=True))
    def get_error(self, obj: ScheduledRun) -> dict | None:
        return obj.error


class ScheduledTransferSerializer(serializers.ModelSerializer):
    from_user_id = serializers.IntegerField()
    to_user_id = serializers.IntegerField()
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField(source="currency_id")
    runs = ScheduledRunSerializer(many=True)

    class Meta:
        model = ScheduledTransfer
        fields = (
            "id",
            "status",
            "from_user_id",
            "to_user_id",
            "amount",
            "currency",
            "description",
            "run_at",
            "interval",
            "end_at",
            "next_run_at",
            "run_count",
            "consecutive_failures",
            "created_at",
            "updated_at",
            "runs",
        )
        read_only_fields = fields

    def get_amount(self, obj: ScheduledTransfer) -> str:
        return format_amount(obj.amount, obj.currency_id)


# ---------------------------------------------------------------- statistics


class StatsCountsSerializer(serializers.Serializer):
    by_type = serializers.DictField(child=serializers.IntegerField())
    by_status = serializers.DictField(child=serializers.IntegerField())


class StatsSerializer(serializers.Serializer):
    transactions = StatsCountsSerializer()
    volume = serializers.DictField(
        child=serializers.CharField(), help_text="Completed volume per currency, as decimals."
    )
    as_of = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=["redis", "database"])
