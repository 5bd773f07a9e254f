from rest_framework import serializers

from money.amounts import format_amount
from money.fields import CurrencyField


class BalanceQuerySerializer(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1)
    currency = CurrencyField()


class HistoricalQuerySerializer(BalanceQuerySerializer):
    to = serializers.DateTimeField(required=False)
    interval = serializers.ChoiceField(
        choices=["day", "hour"],
        required=False,
        help_text=(
            "One point per UTC day or hour: its closing balance. The range (`from` to `to`, "
            "an omitted one being the first or last change) may hold at most 1,000 buckets."
        ),
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(required=False)
        return fields


class AtTimeQuerySerializer(BalanceQuerySerializer):
    timestamp = serializers.DateTimeField()


class BalanceItemSerializer(serializers.Serializer):
    currency = serializers.CharField(source="currency_id")
    amount = serializers.SerializerMethodField()
    last_updated_at = serializers.DateTimeField()

    def get_amount(self, obj) -> str:
        return format_amount(obj.amount, obj.currency_id)


class CurrentBalancesSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    balances = BalanceItemSerializer(many=True)


class HistoryPointSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(source="created_at")
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField(source="currency_id")
    transaction_id = serializers.UUIDField()

    def get_amount(self, obj) -> str:
        return format_amount(obj.balance_after, obj.currency_id)


class AtTimeSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    currency = serializers.CharField()
    amount = serializers.CharField()
    as_of = serializers.DateTimeField()
