"""Transfer limits: per movement and per UTC day, default and per-account rules, set by admins."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.concurrency.harness import run_concurrently
from tests.conftest import client_for
from tests.wallet_project.envelope import assert_error
from transactions import services
from transactions.models import Transaction, TransactionStatus, TransactionType, TransferLimit
from wallet_project.errors import (
    ConflictError,
    LimitExceededError,
    PermissionDeniedError,
    ValidationFailedError,
)

pytestmark = pytest.mark.django_db


def amount_of(user, currency: str = "USD") -> Decimal:
    balance = Balance.objects.filter(user=user, currency_id=currency).first()
    return balance.amount if balance else Decimal(0)


def rule(admin, *, user=None, per_transaction=None, per_day=None, currency="USD"):
    return services.save_limit(
        actor=admin,
        limit=TransferLimit(
            currency_id=currency,
            user=user,
            max_per_transaction=Decimal(per_transaction) if per_transaction else None,
            max_per_day=Decimal(per_day) if per_day else None,
        ),
        reason="risk policy",
    )


def send(sender, recipient, amount: str):
    return services.transfer(
        actor=sender, sender=sender, recipient=recipient, amount=Decimal(amount), currency="USD"
    )


def test_a_transfer_over_the_per_movement_cap_is_refused_and_changes_nothing(
    funded_user, other_user, admin_user
):
    # given
    sender = funded_user("500.00")
    rule(admin_user, per_transaction="100.00")
    before = Transaction.objects.count()
    # when
    response = client_for(sender).post(
        "/api/v1/transactions/transfer",
        {"to_user_id": other_user.pk, "amount": "100.01"},
        format="json",
    )
    # then
    error = assert_error(response, 422, "limit_exceeded")
    assert error["details"] == {"limit": "per_transaction", "max": "100.00"}
    assert amount_of(sender) == Decimal("500.00")
    assert Transaction.objects.count() == before
    assert send(sender, other_user, "100.00").status == TransactionStatus.COMPLETED


def test_the_daily_cap_counts_the_days_completed_sends_and_frees_reversed_ones(
    funded_user, other_user, admin_user
):
    # given
    sender = funded_user("500.00")
    rule(admin_user, per_day="100.00")
    first = send(sender, other_user, "60.00")
    send(sender, other_user, "30.00")
    # when
    with pytest.raises(LimitExceededError) as refused:
        send(sender, other_user, "10.01")
    services.reverse(actor=admin_user, transaction_id=first.pk, reason="duplicate")
    after_reversal = send(sender, other_user, "70.00")
    # then
    assert refused.value.details["remaining"] == "10.00"
    assert after_reversal.status == TransactionStatus.COMPLETED
    assert amount_of(sender) == Decimal("500.00") - Decimal("100.00")


def test_sends_before_midnight_utc_do_not_count_today(funded_user, other_user, admin_user):
    # given: yesterday's 90.00 (moved back a day), and a daily cap of 100.00
    sender = funded_user("500.00")
    yesterday = send(sender, other_user, "90.00")
    Transaction.objects.filter(pk=yesterday.pk).update(
        created_at=yesterday.created_at - timedelta(days=1)
    )
    rule(admin_user, per_day="100.00")
    # when
    today = send(sender, other_user, "95.00")
    # then
    assert today.status == TransactionStatus.COMPLETED


def test_an_accounts_own_rule_replaces_the_default(funded_user, other_user, admin_user):
    # given
    vip, regular = funded_user("1000.00"), funded_user("1000.00")
    rule(admin_user, per_transaction="50.00")
    rule(admin_user, user=vip, per_transaction="500.00")
    # when
    big = send(vip, other_user, "400.00")
    # then
    assert big.status == TransactionStatus.COMPLETED
    with pytest.raises(LimitExceededError):
        send(regular, other_user, "51.00")


def test_debits_and_async_transfers_are_limited_too(funded_user, other_user, admin_user):
    # given
    sender = funded_user("500.00")
    rule(admin_user, per_transaction="10.00")
    # when
    with pytest.raises(LimitExceededError):
        services.debit(actor=sender, user=sender, amount=Decimal("11.00"), currency="USD")
    pending = services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=other_user,
        amount=Decimal("20.00"),
        currency="USD",
    )
    processed = services.process_pending_transaction(transaction_id=pending.pk)
    # then
    assert processed.status == TransactionStatus.FAILED
    assert processed.failure_code == "limit_exceeded"
    assert amount_of(sender) == Decimal("500.00")


def test_staff_movements_on_someone_elses_account_are_not_limited(
    funded_user, other_user, admin_user
):
    # given
    customer = funded_user("500.00")
    rule(admin_user, per_transaction="10.00", per_day="10.00")
    # when
    adjustment = services.adjust_balance(
        actor=admin_user,
        user=customer,
        direction="debit",
        amount=Decimal("200.00"),
        currency="USD",
        kind="chargeback",
        reason="card chargeback",
    )
    on_behalf = services.transfer(
        actor=admin_user,
        sender=customer,
        recipient=other_user,
        amount=Decimal("50.00"),
        currency="USD",
    )
    # then
    assert adjustment.status == on_behalf.status == TransactionStatus.COMPLETED
    assert amount_of(customer) == Decimal("250.00")


def test_credits_and_switched_off_rules_do_not_limit(funded_user, user, admin_user):
    # given
    limit = rule(admin_user, per_transaction="10.00")
    # when
    credit = services.credit(actor=user, user=user, amount=Decimal("50.00"), currency="USD")
    limit.is_active = False
    services.save_limit(actor=admin_user, limit=limit, reason="lifted")
    big = send(user, UserFactory(), "40.00")
    # then
    assert credit.status == big.status == TransactionStatus.COMPLETED


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_never_pass_the_daily_cap(funded_user, other_user, admin_user):
    # given: 10 simultaneous sends of 30.00 under a 100.00 daily cap
    sender = funded_user("1000.00")
    rule(admin_user, per_day="100.00")
    # when
    outcomes = run_concurrently([lambda: send(sender, other_user, "30.00")] * 10)
    # then
    succeeded = [o for o in outcomes if o.error is None]
    assert len(succeeded) == 3
    assert all(isinstance(o.error, LimitExceededError) for o in outcomes if o.error is not None)
    assert amount_of(sender) == Decimal("910.00")


def test_setting_a_rule_is_for_admins_needs_a_reason_and_is_audited(user, admin_user):
    # given
    limit = TransferLimit(currency_id="USD", max_per_day=Decimal("5.00"))
    # when
    with pytest.raises(PermissionDeniedError):
        services.save_limit(actor=user, limit=limit, reason="x")
    with pytest.raises(ValidationFailedError):
        services.save_limit(actor=admin_user, limit=limit, reason="  ")
    saved = services.save_limit(actor=admin_user, limit=limit, reason="fraud wave")
    # then
    event = AuditLog.objects.get(entity_type="transfer_limit", entity_id=str(saved.pk))
    assert event.action == "limit.created"
    assert event.details["max_per_day"] == "5.00"
    assert event.details["reason"] == "fraud wave"


@pytest.mark.parametrize(
    ("per_transaction", "per_day"),
    [(None, None), (Decimal("0"), None), (None, Decimal("-1")), (Decimal("1.001"), None)],
)
def test_a_rule_without_a_valid_cap_is_refused(admin_user, per_transaction, per_day):
    # given
    limit = TransferLimit(
        currency_id="USD", max_per_transaction=per_transaction, max_per_day=per_day
    )
    # when / then
    with pytest.raises(ValidationFailedError):
        services.save_limit(actor=admin_user, limit=limit, reason="policy")
    assert not TransferLimit.objects.exists()


def test_one_active_rule_per_account_and_currency(admin_user, user):
    # given
    rule(admin_user, per_day="10.00")
    rule(admin_user, user=user, per_day="20.00")
    # when / then: the service refuses, and so does the database
    with pytest.raises(ConflictError):
        rule(admin_user, per_day="30.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        TransferLimit.objects.create(
            currency_id="USD", user=user, max_per_day=Decimal("1"), reason="x"
        )
    assert TransferLimit.objects.count() == 2


BATCH = "/api/v1/transactions/batch"


def run_batch(client, items, atomic: bool, capture) -> dict:
    with capture(execute=True):
        accepted = client.post(BATCH, {"items": items, "atomic": atomic}, format="json")
    assert accepted.status_code == 202, accepted.json()
    return client.get(f"{BATCH}/{accepted.json()['id']}").json()


def test_chunked_batch_items_past_the_daily_cap_fail_alone(
    funded_user, admin_user, django_capture_on_commit_callbacks
):
    # given: five items of 30.00 under a 100.00 daily cap, already 20.00 sent today
    sender = funded_user("500.00")
    recipients = UserFactory.create_batch(5)
    send(sender, recipients[0], "20.00")
    rule(admin_user, per_day="100.00")
    items = [{"to_user_id": r.pk, "amount": "30.00"} for r in recipients]
    # when
    shown = run_batch(client_for(sender), items, False, django_capture_on_commit_callbacks)
    # then: 20 + 30 + 30 = 80 fits, the third 30.00 would make 110
    assert [i["status"] for i in shown["items"]] == ["completed"] * 2 + ["failed"] * 3
    assert {i["error"]["code"] for i in shown["items"][2:]} == {"limit_exceeded"}
    assert amount_of(sender) == Decimal("500.00") - Decimal("80.00")


def test_an_atomic_batch_with_an_item_over_the_cap_changes_nothing(
    funded_user, admin_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("500.00")
    recipients = UserFactory.create_batch(2)
    rule(admin_user, per_transaction="50.00")
    items = [{"to_user_id": recipients[0].pk, "amount": "10.00"}]
    items.append({"to_user_id": recipients[1].pk, "amount": "60.00"})
    # when
    shown = run_batch(client_for(sender), items, True, django_capture_on_commit_callbacks)
    # then
    assert shown["status"] == "failed"
    assert [i["error"]["code"] for i in shown["items"]] == ["batch_aborted", "limit_exceeded"]
    assert amount_of(sender) == Decimal("500.00")
