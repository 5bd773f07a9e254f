from decimal import Decimal

import pytest

from balances.models import Balance

pytestmark = pytest.mark.django_db


def test_transfer_moves_money_between_two_users(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    from tests.conftest import client_for

    # when
    response = client_for(sender).post(
        "/api/v1/transactions/transfer",
        {"to_user_id": other_user.pk, "amount": "20.00"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["balance_after"] == "30.00"
    assert Balance.objects.get(user=other_user).amount == Decimal("20.00")
