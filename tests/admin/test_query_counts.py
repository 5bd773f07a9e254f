"""Console pages make a fixed number of queries, whatever the number of rows (no N+1)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import formats, timezone

from audit.reconciliation import reconcile
from tests.accounts.factories import UserFactory
from tests.transactions.services.ledger_state import backdate
from transactions import services as money_services
from transactions.models import TransactionType

pytestmark = pytest.mark.django_db

# Each page's queries: the session and the user, then the page's own (a bounded count, the
# rows, a filter's choices from a small table, the date range's bounds...).
PAGES = {
    "/admin/": 5,
    "/admin/dashboard/": 13,
    "/admin/accounts/user/": 5,
    "/admin/transactions/transaction/": 6,
    "/admin/transactions/scheduledtransfer/": 6,
    "/admin/transactions/scheduledrun/": 5,
    "/admin/transactions/transferbatch/": 5,
    "/admin/transactions/transferbatchitem/": 4,
    "/admin/transactions/idempotencykey/": 5,
    "/admin/money/currency/": 6,
    "/admin/balances/balance/": 6,
    "/admin/balances/balanceentry/": 6,
    "/admin/audit/auditlog/": 5,
    "/admin/audit/auditseal/": 6,
    "/admin/audit/reconciliationrun/": 6,
    "/admin/token_blacklist/outstandingtoken/": 5,
    "/admin/token_blacklist/blacklistedtoken/": 5,
}


def build_activity(admin_user, people: int) -> None:
    """`people` senders, each with a credit, a transfer, a reversal, a queued transfer, a
    failing weekly schedule and a small batch: rows on every console page."""
    recipient = UserFactory(role="user")
    for _ in range(people):
        sender = UserFactory(role="user")
        money_services.credit(actor=admin_user, user=sender, amount=Decimal("50"), currency="USD")
        txn = money_services.transfer(
            actor=sender, sender=sender, recipient=recipient, amount=Decimal("5"), currency="USD"
        )
        money_services.reverse(actor=admin_user, transaction_id=txn.pk, reason="test")
        money_services.create_pending(
            actor=sender,
            kind=TransactionType.TRANSFER,
            from_user=sender,
            to_user=recipient,
            amount=Decimal("1"),
            currency="USD",
        )
        broke = UserFactory(role="user")
        money_services.create_schedule(
            actor=broke,
            sender=broke,
            recipient=recipient,
            amount=Decimal("1"),
            currency="USD",
            run_at=timezone.now(),
            interval="weekly",
        )
        batch = money_services.create_batch(
            actor=admin_user,
            items=[
                money_services.BatchItemInput(
                    from_user_id=sender.pk,
                    to_user_id=recipient.pk,
                    amount=Decimal("1"),
                    currency="USD",
                ),
                money_services.BatchItemInput(
                    from_user_id=sender.pk, to_user_id=999_999, amount=Decimal("1"), currency="USD"
                ),
            ],
            atomic=False,
        )
        money_services.process_batch_chunk(batch_id=batch.pk, start=0, stop=2)
    for run_id in money_services.claim_due_runs(now=timezone.now() + timedelta(minutes=1)):
        money_services.execute_scheduled_run(run_id=run_id)
    reconcile()


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


def test_every_page_makes_a_fixed_number_of_queries(admin_console, admin_user):
    # given a little activity
    build_activity(admin_user, people=1)
    admin_console.get("/admin/")  # the currency table is read once per process, then kept
    small = {url: queries_for(admin_console, url) for url in PAGES}
    # when there is three times as much
    build_activity(admin_user, people=2)
    large = {url: queries_for(admin_console, url) for url in PAGES}
    # then each page makes the same, pinned, number of queries
    assert large == small
    assert small == PAGES


@pytest.mark.parametrize(
    ("query", "offered"),
    [
        ("", "day"),
        ("?created_at__year={year}", "month"),
        ("?created_at__year={year}&created_at__month={month}", "day"),
        ("?created_at__year={year}&created_at__month={month}&created_at__day={day}", "day"),
    ],
)
def test_the_date_drill_down_reads_the_bounds_not_every_row(admin_console, paid, query, offered):
    # given
    today = timezone.localdate()
    url = "/admin/transactions/transaction/" + query.format(
        year=today.year, month=today.month, day=today.day
    )
    # when
    with CaptureQueriesContext(connection) as captured:
        response = admin_console.get(url)
    # then today's rows are listed, today is offered, and no query scanned every row's date
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2
    sql = " ".join(q["sql"] for q in captured.captured_queries).upper()
    assert "DATE_TRUNC" not in sql
    dates = response.context["cl"].bounded_date_hierarchy
    titles = [choice["title"] for choice in dates["choices"]]
    fmt = "MONTH_DAY_FORMAT" if offered == "day" else "YEAR_MONTH_FORMAT"
    assert formats.date_format(today, fmt) in titles


@pytest.mark.parametrize(
    "narrowed", ["user__id__exact={pk}", "q={pk}", "user__id__exact={pk}&currency__code__exact=USD"]
)
def test_one_users_entries_read_their_date_bounds_from_the_users_index(
    admin_console, funded_user, narrowed
):
    # given a user whose entries lie in two months, in two currencies
    user = funded_user("10.00")
    older = money_services.credit(actor=user, user=user, amount=Decimal("5"), currency="EUR")
    backdate(older, to=datetime(2025, 11, 3, 12, tzinfo=UTC))
    # when
    with CaptureQueriesContext(connection) as captured:
        response = admin_console.get("/admin/balances/balanceentry/?" + narrowed.format(pk=user.pk))
    # then the years from the first change to the last are offered, found without a MIN/MAX
    # over the user's entries (the user-time index orders time within a currency only)
    assert response.status_code == 200
    sql = " ".join(q["sql"] for q in captured.captured_queries).upper()
    assert 'MIN("BALANCE_ENTRIES"."CREATED_AT")' not in sql
    dates = response.context["cl"].bounded_date_hierarchy
    titles = [choice["title"] for choice in dates["choices"]]
    today = timezone.localdate()
    if "currency" in narrowed:  # only today's USD entries: today is offered
        assert titles == [formats.date_format(today, "MONTH_DAY_FORMAT")]
    else:
        assert titles == [str(year) for year in range(2025, today.year + 1)]
