"""Transaction shapes: inputs parse strictly, outputs render amounts with the currency's digits."""

from rest_framework import serializers

from transactions.models import Transaction, TransactionStatus, TransactionType
from transactions.money import AmountField, CurrencyField, MoneyInputMixin, format_amount


class _MovementInput(MoneyInputMixin, serializers.Serializer):
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

    def get_amount(self, obj: Transaction) -> str:
        return format_amount(obj.amount, obj.currency_id)

    def get_reversed_by(self, obj: Transaction) -> str | None:
        known = getattr(obj, "reversed_by_id_cache", None)
        if known:
            return known
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
