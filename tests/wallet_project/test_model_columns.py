"""`ModelColumns`: every ledger writer's columns, types and row values come from the model."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import NOT_PROVIDED, Model
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone

from audit.models import AuditLog
from audit.services import EVENT_COLUMNS, PendingEvent, add_events
from balances.locks import _HEAD_COLUMNS
from balances.models import Balance, BalanceEntry
from balances.services import BALANCE_UPDATE_COLUMNS, ENTRY_COLUMNS
from tests.accounts.factories import UserFactory
from transactions.models import Transaction, TransferBatchItem
from transactions.services.batches import ITEM_COLUMNS
from transactions.services.movements import TRANSACTION_COLUMNS, add_transaction_inserts
from wallet_project.statements import ModelColumns, WriteStatement

# Each writer that inserts rows, and the fields it leaves to the database.
INSERTS = [
    pytest.param(TRANSACTION_COLUMNS, Transaction, set(), id="transactions"),
    pytest.param(EVENT_COLUMNS, AuditLog, {"id", "txid"}, id="audit_logs"),
    pytest.param(ENTRY_COLUMNS, BalanceEntry, {"id"}, id="balance_entries"),
    pytest.param(
        ITEM_COLUMNS,
        TransferBatchItem,
        {"id", "transaction", "error_code", "error_message"},
        id="transfer_batch_items",
    ),
]


def _concrete(model: type[Model]) -> set[str]:
    return {f.name for f in model._meta.concrete_fields}


def _written(columns: ModelColumns) -> set[str]:
    return {f.name for f in (*columns.fields, *columns.shared)}


@pytest.mark.parametrize(("columns", "model", "left_to_database"), INSERTS)
def test_an_insert_writes_every_concrete_field_but_those_the_database_fills(
    columns, model, left_to_database
):
    # then: written and omitted make up the model, and only what the database fills is omitted
    assert columns.model is model
    assert set(columns.omitted) == left_to_database
    assert _written(columns) == _concrete(model) - left_to_database
    for name in left_to_database:
        field = model._meta.get_field(name)
        identity = field.primary_key and isinstance(field, AutoFieldMixin)
        assert identity or field.db_default is not NOT_PROVIDED or field.null, name
        assert columns.omitted[name], f"{name} is omitted without a reason"


@pytest.mark.parametrize(
    ("columns", "changed"),
    [
        pytest.param(
            BALANCE_UPDATE_COLUMNS,
            {"amount", "entry_count", "head_hash", "last_updated_at"},
            id="posting",
        ),
        pytest.param(_HEAD_COLUMNS, {"head_hash"}, id="opened chain head"),
    ],
)
def test_a_balance_update_names_its_row_by_key_and_writes_what_it_changes(columns, changed):
    # then: the key, the changed fields, and every other field omitted by name
    assert columns.fields[0].name == "id"
    assert _written(columns) == {"id", *changed}
    assert set(columns.omitted) == _concrete(Balance) - {"id", *changed}


def test_the_sql_types_are_the_columns_own():
    # then: each source column has its field's database type (JSON travels as text)
    typed = dict(TRANSACTION_COLUMNS.typed)
    assert typed["id"] == "uuid"
    assert typed["type"] == "varchar(16)"
    assert typed["description"] == "varchar(500)"
    assert typed["amount"] == "numeric(24, 3)"
    assert typed["currency"] == "varchar(3)"
    assert typed["created_at"] == "timestamp with time zone"
    assert dict(EVENT_COLUMNS.typed)["details"] == "text"
    assert 'v."details"::jsonb' in EVENT_COLUMNS.insert([])[0]


def test_a_misnamed_field_is_refused():
    with pytest.raises(FieldDoesNotExist):
        ModelColumns(Transaction, omitted={"stauts": "misspelt"})
    with pytest.raises(FieldDoesNotExist):
        ModelColumns(AuditLog, omitted={"id": "", "txid": ""}, attributes={"detials": "x"})


def test_a_field_left_out_without_saying_so_is_refused():
    # given: every field of the transaction but its reference
    fields = [f.name for f in Transaction._meta.concrete_fields if f.name != "reference"]
    # when / then
    with pytest.raises(ImproperlyConfigured, match=r"missing \['reference'\]"):
        ModelColumns(Transaction, fields=fields)


def test_a_field_named_twice_is_refused():
    with pytest.raises(ImproperlyConfigured, match=r"listed twice \['amount'\]"):
        ModelColumns(Balance, fields=["id", "amount"], omitted={"amount": "", "user": ""})


def test_a_row_holds_each_columns_own_value():
    # given: an event whose text columns all differ
    event = PendingEvent(
        entity_type="entity-type",
        entity_id="entity-id",
        action="action",
        details={"k": "v"},
        actor_id=7,
        created_at=timezone.now(),
        chain="chain",
        prev_hash="prev-hash",
        request_id="request-id",
        client_ip="10.0.0.1",
    )
    # when
    row = dict(zip(EVENT_COLUMNS.names, EVENT_COLUMNS.row(event), strict=True))
    # then
    assert row["details"] == event.details_text
    assert {k: v for k, v in row.items() if k != "details"} == {
        f.column: getattr(event, f.attname) for f in EVENT_COLUMNS.fields if f.name != "details"
    }


# ---------------------------------------------------------------- round trips


def _transaction(**values) -> Transaction:
    """A failed transaction (no entries) whose columns all hold different values."""
    payer, payee, staff = UserFactory(), UserFactory(), UserFactory()
    now = timezone.now()
    fields = {
        "id": uuid.uuid4(),
        "type": "transfer",
        "status": "failed",
        "from_user_id": payer.pk,
        "to_user_id": payee.pk,
        "amount": Decimal("12.340"),
        "currency_id": "EUR",
        "description": "the description",
        "reference": "the reference",
        "failure_code": "the_failure_code",
        "initiated_by_id": staff.pk,
        "created_at": now - timedelta(seconds=5),
        "completed_at": now,
    }
    return Transaction(**{**fields, **values})


def _write(columns: ModelColumns, txns: list[Transaction]) -> None:
    write = WriteStatement()
    write.add(*columns.insert([columns.row(t) for t in txns]))
    write.execute()


def _differences(txn: Transaction) -> set[str]:
    stored = Transaction.objects.get(pk=txn.pk)
    return {
        f.name
        for f in Transaction._meta.concrete_fields
        if getattr(stored, f.attname) != getattr(txn, f.attname)
    }


@pytest.mark.django_db
def test_a_transaction_is_stored_as_built_in_every_column():
    # given: an original and a transaction pointing at it
    original = _transaction()
    txn = _transaction(reversal_of_id=original.pk, reference="another reference")
    # when: the movements' own insert
    write = WriteStatement()
    add_transaction_inserts(write, txns=[original, txn])
    write.execute()
    # then
    assert _differences(original) == set()
    assert _differences(txn) == set()


@pytest.mark.django_db
def test_an_event_is_stored_as_built_in_every_column():
    # given
    event = PendingEvent(
        entity_type="entity-type",
        entity_id="entity-id",
        action="action",
        details={"amount": "1.00", "nested": {"b": 2, "a": [1, None]}},
        actor_id=None,
        created_at=timezone.now(),
        chain=f"test:{uuid.uuid4()}",
        request_id="request-id",
        client_ip="192.0.2.1",
    )
    # when
    write = WriteStatement()
    add_events(write, events=[event])
    write.execute()
    # then
    stored = AuditLog.objects.get(chain=event.chain)
    for field in EVENT_COLUMNS.fields:
        assert getattr(stored, field.attname) == getattr(event, field.attname), field.name
    assert stored.txid > 0


@pytest.mark.django_db
def test_the_order_fields_are_listed_in_does_not_matter():
    # given: the columns listed backwards
    backwards = ModelColumns(
        Transaction, fields=[f.name for f in reversed(Transaction._meta.concrete_fields)]
    )
    txn = _transaction()
    # when
    _write(backwards, [txn])
    # then
    assert _differences(txn) == set()


@pytest.mark.django_db
def test_a_swapped_column_is_caught_by_the_round_trip():
    # given: a writer that reads two text columns from each other's attribute (the mistake a
    # hand-written column list could make silently)
    swapped = ModelColumns(
        Transaction, attributes={"description": "reference", "reference": "description"}
    )
    txn = _transaction()
    # when
    _write(swapped, [txn])
    # then: the stored row differs from the transaction in exactly those two columns
    assert _differences(txn) == {"description", "reference"}
