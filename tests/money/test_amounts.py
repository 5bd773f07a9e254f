"""Money at the edge: strict parsing of request amounts, rendering with the currency's digits."""

import json
from decimal import Decimal

import pytest

from money import amounts
from money.models import Currency
from tests.conftest import client_for
from tests.transactions.services.ledger_state import assert_unchanged, ledger_snapshot
from transactions.models import Transaction
from wallet_project.errors import ValidationFailedError
from wallet_project.parsers import ExponentNumber

pytestmark = pytest.mark.django_db

CREDIT = "/api/v1/transactions/credit"


def post_raw(client, body: str):
    """Send `body` verbatim, so JSON numbers reach the parser as the client wrote them."""
    return client.post(CREDIT, data=body, content_type="application/json")


# parse_amount ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("10.50", "USD", Decimal("10.50")),
        ("10.5", "USD", Decimal("10.5")),
        ("10", "USD", Decimal("10")),
        (" 7.25 ", "USD", Decimal("7.25")),
        ("0.01", "USD", Decimal("0.01")),
        ("1200", "JPY", Decimal("1200")),
        ("0.001", "KWD", Decimal("0.001")),
        ("999999999999999999.99", "USD", Decimal("999999999999999999.99")),
        (Decimal("10.5"), "USD", Decimal("10.5")),
        (10, "USD", Decimal("10")),
        (1200, "JPY", Decimal("1200")),
    ],
)
def test_parse_amount_accepts_plain_positive_decimals(raw, currency, expected):
    # when
    value = amounts.parse_amount(raw, currency)
    # then
    assert value == expected
    assert isinstance(value, Decimal)


@pytest.mark.parametrize(
    ("raw", "currency"),
    [
        ("0", "USD"),
        ("0.00", "USD"),
        (0, "USD"),
        ("-1.00", "USD"),
        (-5, "USD"),
        ("NaN", "USD"),
        ("nan", "USD"),
        ("Infinity", "USD"),
        ("-Infinity", "USD"),
        ("inf", "USD"),
        (Decimal("NaN"), "USD"),
        (Decimal("Infinity"), "USD"),
        ("1e3", "USD"),
        ("1E3", "USD"),
        (ExponentNumber("1e3"), "USD"),
        ("10.500", "USD"),
        ("10.001", "USD"),
        (Decimal("10.500"), "USD"),
        ("1200.0", "JPY"),
        ("1200.5", "JPY"),
        ("1.0001", "KWD"),
        ("1" * 19, "USD"),
        ("1" * 19 + ".00", "USD"),
        ("ten", "USD"),
        ("", "USD"),
        ("   ", "USD"),
        ("10.00.00", "USD"),
        ("1,000.00", "USD"),
        ("$10", "USD"),
        ("0x10", "USD"),
        ("10_000", "USD"),
        (True, "USD"),
        (False, "USD"),
        (None, "USD"),
        ([], "USD"),
        ({"amount": "1"}, "USD"),
        (10.5, "USD"),
    ],
)
def test_parse_amount_refuses_anything_but_a_plain_positive_decimal(raw, currency):
    # when / then
    with pytest.raises(ValueError):  # noqa: PT011 - every refusal carries its own message
        amounts.parse_amount(raw, currency)


@pytest.mark.parametrize(
    "raw", ["\u0661\u0660.\u0665\u0660", "\uff11\uff10.\uff15\uff10", "\u06f1\u06f2"]
)
def test_parse_amount_refuses_non_ascii_digits(raw):
    # given a string Python's Decimal would read as a number
    assert Decimal(raw) > 0
    # when / then
    with pytest.raises(ValueError):  # noqa: PT011
        amounts.parse_amount(raw, "USD")


def test_parse_amount_counts_integer_digits_without_leading_zeros():
    # 18 significant integer digits behind leading zeros are still 18
    assert amounts.parse_amount("000" + "9" * 18 + ".00", "USD") == Decimal("9" * 18)


def test_parse_amount_refuses_an_unknown_currency():
    with pytest.raises(ValidationFailedError) as refused:
        amounts.parse_amount("10.00", "XXX")
    assert refused.value.code == "validation_error"
    assert "currency" in refused.value.details


# format_amount ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "rendered"),
    [
        (Decimal("10.5"), "USD", "10.50"),
        (Decimal("10.500"), "USD", "10.50"),
        (Decimal("0"), "USD", "0.00"),
        (Decimal("0.000"), "EUR", "0.00"),
        (Decimal("1200"), "JPY", "1200"),
        (Decimal("1200.000"), "JPY", "1200"),
        (Decimal("0"), "JPY", "0"),
        (Decimal("0"), "KWD", "0.000"),
        (Decimal("1.5"), "KWD", "1.500"),
        (Decimal("999999999999999999.99"), "GBP", "999999999999999999.99"),
        (Decimal("1E+3"), "USD", "1000.00"),
    ],
)
def test_format_amount_renders_exactly_the_currency_digits(amount, currency, rendered):
    assert amounts.format_amount(amount, currency) == rendered


def test_format_amount_keeps_none():
    assert amounts.format_amount(None, "USD") is None


# the API's money rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "currency", "amount"),
    [
        ('{"amount": "10.50"}', "USD", "10.50"),
        ('{"amount": 10.5}', "USD", "10.50"),
        ('{"amount": 0.1}', "USD", "0.10"),
        ('{"amount": 10}', "USD", "10.00"),
        ('{"amount": "1200", "currency": "JPY"}', "JPY", "1200"),
        ('{"amount": 1200, "currency": "JPY"}', "JPY", "1200"),
        ('{"amount": "0.5", "currency": "KWD"}', "KWD", "0.500"),
        ('{"amount": 2.125, "currency": "KWD"}', "KWD", "2.125"),
        ('{"amount": "3", "currency": "EUR"}', "EUR", "3.00"),
    ],
)
def test_credit_reads_amounts_exactly_and_renders_the_currency_digits(user, body, currency, amount):
    # when
    response = post_raw(client_for(user), body)
    # then
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["amount"] == amount
    assert data["currency"] == currency
    assert data["balance_after"] == amount
    stored = Transaction.objects.get(pk=data["id"])
    assert stored.amount == Decimal(amount)


def test_a_json_number_is_never_a_binary_float(user):
    # given a number with no exact binary representation, sent three times
    client = client_for(user)
    for _ in range(3):
        assert post_raw(client, '{"amount": 0.1}').status_code == 201
    # when
    response = client.get("/api/v1/balances/current")
    # then
    assert response.json()["balances"][0]["amount"] == "0.30"


def test_currency_defaults_to_usd(user):
    # when
    response = client_for(user).post(CREDIT, {"amount": "5"}, format="json")
    # then
    assert response.status_code == 201
    assert response.json()["currency"] == "USD"
    assert response.json()["amount"] == "5.00"


@pytest.mark.parametrize(
    "body",
    [
        '{"amount": "0"}',
        '{"amount": "0.00"}',
        '{"amount": 0}',
        '{"amount": 0.0}',
        '{"amount": "-1.00"}',
        '{"amount": -1}',
        '{"amount": -0.5}',
        '{"amount": "NaN"}',
        '{"amount": "Infinity"}',
        '{"amount": "-Infinity"}',
        '{"amount": "1e3"}',
        '{"amount": 1e3}',
        '{"amount": 1E3}',
        '{"amount": 1.5e2}',
        '{"amount": "10.500"}',
        '{"amount": 10.500}',
        '{"amount": "10.001"}',
        '{"amount": "1200.0", "currency": "JPY"}',
        '{"amount": 1200.0, "currency": "JPY"}',
        '{"amount": "1.0000", "currency": "KWD"}',
        '{"amount": "1234567890123456789"}',
        '{"amount": 1234567890123456789}',
        '{"amount": "1234567890123456789.00"}',
        '{"amount": "ten dollars"}',
        '{"amount": ""}',
        '{"amount": "10,00"}',
        '{"amount": "\\u0661\\u0660"}',
        '{"amount": true}',
        '{"amount": false}',
        '{"amount": null}',
        '{"amount": ["10.00"]}',
        '{"amount": {"value": "10.00"}}',
        "{}",
    ],
)
def test_credit_refuses_a_bad_amount_and_changes_nothing(user, body):
    # given
    before = ledger_snapshot()
    # when
    response = post_raw(client_for(user), body)
    # then
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "amount" in error["details"]
    assert_unchanged(before)


@pytest.mark.parametrize(
    "body", ['{"amount": NaN}', '{"amount": Infinity}', '{"amount": -Infinity}']
)
def test_nan_and_infinity_literals_are_not_json(user, body):
    # given
    before = ledger_snapshot()
    # when
    response = post_raw(client_for(user), body)
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert_unchanged(before)


@pytest.mark.parametrize("currency", ["XXX", "usd", "US", "USDX", "", 840, True])
def test_credit_refuses_an_unknown_currency(user, currency):
    # given
    before = ledger_snapshot()
    # when
    response = client_for(user).post(
        CREDIT, {"amount": "10.00", "currency": currency}, format="json"
    )
    # then
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "currency" in error["details"]
    assert_unchanged(before)


def test_credit_refuses_a_disabled_currency(user):
    # given
    Currency.objects.filter(code="GBP").update(enabled=False)
    amounts.forget_currencies()
    before = ledger_snapshot()
    # when
    response = client_for(user).post(CREDIT, {"amount": "10.00", "currency": "GBP"}, format="json")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "currency" in response.json()["error"]["details"]
    assert_unchanged(before)


def test_the_largest_amount_is_accepted_and_rendered_in_full(user):
    # when
    response = client_for(user).post(CREDIT, {"amount": "999999999999999999.99"}, format="json")
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "999999999999999999.99"
    assert response.json()["balance_after"] == "999999999999999999.99"


@pytest.mark.parametrize(("currency", "zero"), [("USD", "0.00"), ("JPY", "0"), ("KWD", "0.000")])
def test_a_zero_balance_is_rendered_with_the_currency_digits(funded_user, currency, zero):
    # given a balance that went up and back down to zero
    amount = {"USD": "1.00", "JPY": "100", "KWD": "1.000"}[currency]
    owner = funded_user(amount, currency)
    client = client_for(owner)
    debit = client.post(
        "/api/v1/transactions/debit", {"amount": amount, "currency": currency}, format="json"
    )
    assert debit.status_code == 201
    # when
    response = client.get("/api/v1/balances/current", {"currency": currency})
    # then
    assert debit.json()["balance_after"] == zero
    assert response.json()["balances"] == [
        {
            "currency": currency,
            "amount": zero,
            "last_updated_at": response.json()["balances"][0]["last_updated_at"],
        }
    ]


def test_amount_strings_in_responses_never_use_exponents(user):
    # given an amount whose Decimal repr would be exponent-like
    client = client_for(user)
    client.post(CREDIT, {"amount": "1000000"}, format="json")
    # when
    body = json.dumps(client.get("/api/v1/transactions/history").json())
    # then
    assert "1000000.00" in body
    assert "E+" not in body
