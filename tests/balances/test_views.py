"""Balance reads: current, historical (every change or closing balance per bucket), at-time."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.dateparse import parse_datetime

from balances.models import Balance, BalanceEntry
from tests.conftest import READ_TRANSACTION_QUERIES, client_for
from tests.transactions.services.ledger_state import backdate
from transactions import services

pytestmark = pytest.mark.django_db

API = "/api/v1/balances"


def credit(user, amount: str, currency: str = "USD"):
    return services.credit(actor=user, user=user, amount=Decimal(amount), currency=currency)


def debit(user, amount: str, currency: str = "USD"):
    return services.debit(actor=user, user=user, amount=Decimal(amount), currency=currency)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    return response.json()["error"]


# current ----------------------------------------------------------------------------------


def test_current_lists_each_currency_with_its_digits(user):
    # given
    credit(user, "10.50")
    credit(user, "1200", "JPY")
    credit(user, "0.125", "KWD")
    # when
    response = client_for(user).get(f"{API}/current")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == user.pk
    assert [(b["currency"], b["amount"]) for b in body["balances"]] == [
        ("JPY", "1200"),
        ("KWD", "0.125"),
        ("USD", "10.50"),
    ]
    assert all(set(b) == {"currency", "amount", "last_updated_at"} for b in body["balances"])


def test_current_last_updated_at_is_the_last_change(user):
    # given
    credit(user, "1.00")
    last = debit(user, "0.50")
    # when
    body = client_for(user).get(f"{API}/current").json()
    # then
    assert parse_datetime(body["balances"][0]["last_updated_at"]) == last.created_at


def test_current_filters_by_currency(user):
    # given
    credit(user, "1.00")
    credit(user, "2.00", "EUR")
    # when
    body = client_for(user).get(f"{API}/current", {"currency": "EUR"}).json()
    # then
    assert [(b["currency"], b["amount"]) for b in body["balances"]] == [("EUR", "2.00")]


def test_current_is_empty_before_any_money(user):
    body = client_for(user).get(f"{API}/current").json()
    assert body == {"user_id": user.pk, "balances": []}


@pytest.mark.parametrize("reader", ["admin", "auditor"])
def test_admins_and_auditors_read_anyones_balances(user, reader, admin_user, auditor):
    # given
    credit(user, "3.00")
    who = admin_user if reader == "admin" else auditor
    # when
    body = client_for(who).get(f"{API}/current", {"user_id": user.pk}).json()
    # then
    assert body["user_id"] == user.pk
    assert [b["amount"] for b in body["balances"]] == ["3.00"]


@pytest.mark.parametrize("endpoint", ["current", "historical", "at-time"])
def test_a_user_cannot_read_another_users_balances(user, other_user, endpoint):
    # given
    credit(other_user, "3.00")
    query = {"user_id": other_user.pk, "timestamp": iso(datetime.now(tz=UTC))}
    # when
    response = client_for(user).get(f"{API}/{endpoint}", query)
    # then
    assert_refused(response, 403, "permission_denied")


@pytest.mark.parametrize("endpoint", ["current", "historical", "at-time"])
def test_balance_reads_refuse_an_unknown_currency(user, endpoint):
    query = {"currency": "XXX", "timestamp": iso(datetime.now(tz=UTC))}
    error = assert_refused(
        client_for(user).get(f"{API}/{endpoint}", query), 400, "validation_error"
    )
    assert "currency" in error["details"]


@pytest.mark.parametrize("endpoint", ["current", "historical", "at-time"])
def test_balance_reads_require_authentication(api_client, endpoint):
    assert_refused(api_client.get(f"{API}/{endpoint}"), 401, "not_authenticated")


# historical -------------------------------------------------------------------------------


def points(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.json()
    return [(p["amount"], p["transaction_id"]) for p in response.json()["results"]]


def test_historical_lists_every_change_oldest_first(user, other_user):
    # given
    t1 = credit(user, "10.00")
    t2 = debit(user, "2.50")
    t3 = services.transfer(
        actor=user, sender=user, recipient=other_user, amount=Decimal("1.00"), currency="USD"
    )
    t4 = services.transfer(
        actor=other_user, sender=other_user, recipient=user, amount=Decimal("0.25"), currency="USD"
    )
    # when
    response = client_for(user).get(f"{API}/historical")
    # then
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert points(response) == [
        ("10.00", str(t1.pk)),
        ("7.50", str(t2.pk)),
        ("6.50", str(t3.pk)),
        ("6.75", str(t4.pk)),
    ]
    first = body["results"][0]
    assert set(first) == {"timestamp", "amount", "currency", "transaction_id"}
    assert first["currency"] == "USD"
    assert parse_datetime(first["timestamp"]) == t1.created_at


def test_historical_mixes_currencies_unless_one_is_named(user):
    # given
    t1 = credit(user, "10.00")
    t2 = credit(user, "500", "JPY")
    t3 = credit(user, "1.00")
    client = client_for(user)
    # when
    everything = client.get(f"{API}/historical")
    only_yen = client.get(f"{API}/historical", {"currency": "JPY"})
    # then
    assert points(everything) == [
        ("10.00", str(t1.pk)),
        ("500", str(t2.pk)),
        ("11.00", str(t3.pk)),
    ]
    assert points(only_yen) == [("500", str(t2.pk))]


def test_historical_time_range_includes_from_and_excludes_to(user):
    # given
    txns = [credit(user, "1.00") for _ in range(4)]
    # when
    response = client_for(user).get(
        f"{API}/historical",
        {"from": iso(txns[1].created_at), "to": iso(txns[3].created_at)},
    )
    # then
    assert points(response) == [("2.00", str(txns[1].pk)), ("3.00", str(txns[2].pk))]


@pytest.fixture
def three_days(user):
    """Real movements moved onto a clock: two changes on day one, three on day two (two of
    them in the same hour), one on day three."""
    day = datetime(2026, 3, 10, tzinfo=UTC)
    plan = [
        (credit, "10.00", day + timedelta(hours=9)),
        (debit, "1.00", day + timedelta(hours=17, minutes=30)),
        (credit, "5.00", day + timedelta(days=1, hours=8, minutes=5)),
        (debit, "2.00", day + timedelta(days=1, hours=8, minutes=55)),
        (credit, "0.50", day + timedelta(days=1, hours=23, minutes=59, seconds=59)),
        (debit, "3.00", day + timedelta(days=2, hours=0, minutes=0, seconds=1)),
    ]
    txns = []
    for move, amount, at in plan:
        txn = move(user, amount)
        backdate(txn, to=at)
        txn.refresh_from_db()
        txns.append(txn)
    return txns


def test_historical_by_day_gives_each_days_closing_balance(user, three_days):
    # when
    response = client_for(user).get(f"{API}/historical", {"interval": "day"})
    # then
    txns = three_days
    assert points(response) == [
        ("9.00", str(txns[1].pk)),
        ("12.50", str(txns[4].pk)),
        ("9.50", str(txns[5].pk)),
    ]
    stamps = [parse_datetime(p["timestamp"]) for p in response.json()["results"]]
    assert stamps == [txns[1].created_at, txns[4].created_at, txns[5].created_at]


def test_historical_by_hour_gives_each_hours_closing_balance(user, three_days):
    # when
    response = client_for(user).get(f"{API}/historical", {"interval": "hour"})
    # then only the two changes in one hour collapse into one point
    txns = three_days
    assert points(response) == [
        ("10.00", str(txns[0].pk)),
        ("9.00", str(txns[1].pk)),
        ("12.00", str(txns[3].pk)),
        ("12.50", str(txns[4].pk)),
        ("9.50", str(txns[5].pk)),
    ]


def test_historical_buckets_each_currency_apart(user):
    # given
    credit(user, "1.00")
    yen = credit(user, "100", "JPY")
    usd = credit(user, "2.00")
    # when
    response = client_for(user).get(f"{API}/historical", {"interval": "day"})
    # then
    assert points(response) == [("100", str(yen.pk)), ("3.00", str(usd.pk))]


def test_historical_by_day_with_a_time_range(user, three_days):
    # when the range starts on day two
    txns = three_days
    response = client_for(user).get(
        f"{API}/historical", {"interval": "day", "from": iso(txns[2].created_at)}
    )
    # then
    assert points(response) == [("12.50", str(txns[4].pk)), ("9.50", str(txns[5].pk))]


def test_historical_buckets_page_with_cursors(user, three_days):
    # given
    client = client_for(user)
    # when
    seen, url = [], f"{API}/historical?interval=hour&page_size=2"
    pages = []
    while url:
        page = client.get(url).json()
        pages.append(page)
        seen += [p["transaction_id"] for p in page["results"]]
        url = page["next"]
    # then the hours' closing changes, in order, two by two
    txns = three_days
    assert seen == [str(txns[i].pk) for i in (0, 1, 3, 4, 5)]
    assert [len(p["results"]) for p in pages] == [2, 2, 1]
    back = client.get(pages[2]["previous"]).json()
    assert [p["transaction_id"] for p in back["results"]] == [str(txns[i].pk) for i in (3, 4)]


def test_historical_refuses_a_year_of_hours(user):
    # given
    credit(user, "1.00")
    # when
    response = client_for(user).get(
        f"{API}/historical",
        {"interval": "hour", "from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    )
    # then the limit is in the details
    error = assert_refused(response, 400, "validation_error")
    assert error["details"]["max_buckets"] == 1000
    assert error["details"]["buckets"] == 365 * 24
    assert error["details"]["interval"]


def test_historical_reads_a_year_of_days(user, three_days):
    # when
    response = client_for(user).get(
        f"{API}/historical",
        {"interval": "day", "from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"},
    )
    # then
    assert [tx for _, tx in points(response)] == [str(three_days[i].pk) for i in (1, 4, 5)]


def test_historical_without_a_bound_counts_the_buckets_from_the_first_change(user):
    # given changes sixty days apart
    first = credit(user, "1.00")
    backdate(first, to=datetime.now(tz=UTC) - timedelta(days=60))
    last = credit(user, "1.00")
    client = client_for(user)
    # when
    hours = client.get(f"{API}/historical", {"interval": "hour"})
    days = client.get(f"{API}/historical", {"interval": "day"})
    # then some 1,440 hours are too many, sixty-one days are not
    error = assert_refused(hours, 400, "validation_error")
    assert error["details"]["max_buckets"] == 1000
    assert [tx for _, tx in points(days)] == [str(first.pk), str(last.pk)]


@pytest.mark.parametrize(
    "query", [{"interval": "week"}, {"from": "last tuesday"}, {"to": "2026-02-30T00:00:00Z"}]
)
def test_historical_refuses_a_bad_query(user, query):
    error = assert_refused(
        client_for(user).get(f"{API}/historical", query), 400, "validation_error"
    )
    assert set(query) <= set(error["details"])


def test_historical_pages_with_cursors(user):
    # given
    txns = [credit(user, "1.00") for _ in range(5)]
    client = client_for(user)
    # when
    seen, pages, url = [], [], f"{API}/historical?page_size=2"
    while url:
        page = client.get(url).json()
        pages.append(page)
        seen += [p["transaction_id"] for p in page["results"]]
        url = page["next"]
    # then
    assert seen == [str(t.pk) for t in txns]
    assert [len(p["results"]) for p in pages] == [2, 2, 1]
    assert pages[0]["previous"] is None
    back = client.get(pages[2]["previous"]).json()
    assert [p["transaction_id"] for p in back["results"]] == [str(t.pk) for t in txns[2:4]]


def test_historical_page_size_defaults_to_50_and_stops_at_200(user):
    # given
    for _ in range(205):
        credit(user, "1.00")
    client = client_for(user)
    # when
    default = client.get(f"{API}/historical").json()
    largest = client.get(f"{API}/historical", {"page_size": 1000}).json()
    # then
    assert len(default["results"]) == 50
    assert len(largest["results"]) == 200
    assert largest["results"][-1]["amount"] == "200.00"


@pytest.mark.parametrize("reader", ["admin", "auditor"])
def test_admins_and_auditors_read_anyones_history(user, reader, admin_user, auditor):
    # given
    txn = credit(user, "4.00")
    who = admin_user if reader == "admin" else auditor
    # when
    response = client_for(who).get(f"{API}/historical", {"user_id": user.pk})
    # then
    assert points(response) == [("4.00", str(txn.pk))]


@pytest.mark.parametrize("interval", [None, "day"])
def test_historical_makes_a_fixed_number_of_queries(user, django_assert_num_queries, interval):
    # given
    client = client_for(user)
    first = credit(user, "1.00")
    window = {"from": iso(first.created_at), "to": iso(datetime.now(tz=UTC) + timedelta(days=1))}
    query = {"interval": interval, **window} if interval else {}
    client.get(f"{API}/historical", query)  # warm the currency cache
    # when / then: the read's transaction, authentication, the user's currencies (without
    # an interval), one page query, however many rows
    queries = READ_TRANSACTION_QUERIES + (2 if interval else 3)
    with django_assert_num_queries(queries):
        client.get(f"{API}/historical", query)
    for _ in range(20):
        credit(user, "1.00")
    with django_assert_num_queries(queries):
        response = client.get(f"{API}/historical", query)
    assert len(response.json()["results"]) == (21 if interval is None else 1)


# at-time ----------------------------------------------------------------------------------


def at(client, moment: datetime | str, **query):
    stamp = moment if isinstance(moment, str) else iso(moment)
    response = client.get(f"{API}/at-time", {"timestamp": stamp, **query})
    assert response.status_code == 200, response.json()
    return response.json()


def test_at_time_before_the_first_transaction_is_zero(user):
    # given
    first = credit(user, "10.00")
    client = client_for(user)
    # when
    body = at(client, first.created_at - timedelta(microseconds=1))
    # then
    assert body == {
        "user_id": user.pk,
        "currency": "USD",
        "amount": "0.00",
        "as_of": body["as_of"],
    }
    assert parse_datetime(body["as_of"]) == first.created_at - timedelta(microseconds=1)


@pytest.mark.parametrize(("currency", "zero"), [("JPY", "0"), ("KWD", "0.000"), ("EUR", "0.00")])
def test_at_time_zero_has_the_currency_digits(user, currency, zero):
    body = at(client_for(user), datetime(2020, 1, 1, tzinfo=UTC), currency=currency)
    assert (body["currency"], body["amount"]) == (currency, zero)


def test_at_an_entrys_exact_timestamp_the_entry_is_included(user):
    # given
    credit(user, "10.00")
    second = debit(user, "4.00")
    third = credit(user, "0.01")
    client = client_for(user)
    # when / then
    assert at(client, second.created_at)["amount"] == "6.00"
    assert at(client, second.created_at - timedelta(microseconds=1))["amount"] == "10.00"
    assert at(client, third.created_at)["amount"] == "6.01"
    assert at(client, third.created_at + timedelta(days=365))["amount"] == "6.01"


def test_at_time_reads_any_utc_offset(user):
    # given
    txn = credit(user, "10.00")
    client = client_for(user)
    plus_two = txn.created_at.astimezone(timezone(timedelta(hours=2)))
    just_before = (txn.created_at - timedelta(microseconds=1)).astimezone(
        timezone(timedelta(hours=-5))
    )
    # when / then
    assert "+02:00" in iso(plus_two)
    assert at(client, plus_two)["amount"] == "10.00"
    assert at(client, just_before)["amount"] == "0.00"


def test_at_time_reads_one_currency(user):
    # given
    credit(user, "10.00")
    yen = credit(user, "700", "JPY")
    # when
    body = at(client_for(user), yen.created_at, currency="JPY")
    # then
    assert (body["currency"], body["amount"]) == ("JPY", "700")


def test_at_time_follows_a_reversal(user, admin_user):
    # given
    credit(user, "10.00")
    bounced = credit(user, "5.00")
    reversal = services.reverse(actor=admin_user, transaction_id=bounced.pk, reason="bounced")
    client = client_for(user)
    # when / then
    assert at(client, bounced.created_at)["amount"] == "15.00"
    assert at(client, reversal.created_at)["amount"] == "10.00"


@pytest.mark.parametrize("reader", ["admin", "auditor"])
def test_admins_and_auditors_read_anyones_past_balance(user, reader, admin_user, auditor):
    txn = credit(user, "4.00")
    who = admin_user if reader == "admin" else auditor
    body = at(client_for(who), txn.created_at, user_id=user.pk)
    assert (body["user_id"], body["amount"]) == (user.pk, "4.00")


@pytest.mark.parametrize("query", [{}, {"timestamp": "noon"}, {"timestamp": ""}])
def test_at_time_needs_a_timestamp(user, query):
    error = assert_refused(client_for(user).get(f"{API}/at-time", query), 400, "validation_error")
    assert "timestamp" in error["details"]


def test_at_time_is_one_lookup_whatever_the_history(user, django_assert_num_queries):
    # given
    for _ in range(30):
        credit(user, "1.00")
    client = client_for(user)
    now = iso(datetime.now(tz=UTC))
    client.get(f"{API}/at-time", {"timestamp": now})  # warm the currency cache
    # when / then: the read's transaction, authentication, then one indexed lookup
    with django_assert_num_queries(READ_TRANSACTION_QUERIES + 2):
        response = client.get(f"{API}/at-time", {"timestamp": now})
    assert response.json()["amount"] == "30.00"


# paths ------------------------------------------------------------------------------------


def test_trailing_slash_and_no_slash_answer_the_same(user):
    # given
    txn = credit(user, "4.00")
    client = client_for(user)
    query = {"timestamp": iso(txn.created_at)}
    # when / then
    for endpoint in ("current", "historical", "at-time"):
        plain = client.get(f"{API}/{endpoint}", query)
        slashed = client.get(f"{API}/{endpoint}/", query)
        assert plain.status_code == slashed.status_code == 200, endpoint
        assert plain.json() == slashed.json()


def test_reads_change_nothing(user):
    # given
    credit(user, "4.00")
    counts = (Balance.objects.count(), BalanceEntry.objects.count())
    client = client_for(user)
    # when
    for endpoint in ("current", "historical"):
        client.get(f"{API}/{endpoint}")
    at(client, datetime.now(tz=UTC))
    # then
    assert (Balance.objects.count(), BalanceEntry.objects.count()) == counts
