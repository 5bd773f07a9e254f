"""`copy_rows`: bulk inserts with COPY, streamed from a generator, in the caller's transaction."""

import pytest
from django.db import connection, transaction

from money.models import Currency
from wallet_project.statements import copy_rows

pytestmark = pytest.mark.django_db

COLUMNS = ("code", "name", "exponent", "enabled")


class Refused(Exception):
    pass


def test_copy_rows_inserts_every_row_in_the_order_given():
    # given
    rows = [("ZZC", "Tab\there", 2, True), ("ZZA", 'Quote " and \\', 0, False)]
    # when
    copy_rows("currencies", COLUMNS, iter(rows))
    # then
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, name, exponent, enabled FROM currencies WHERE code LIKE 'ZZ%%' "
            "ORDER BY ctid"
        )
        assert cursor.fetchall() == rows


def test_an_error_raised_by_the_rows_propagates_and_inserts_nothing():
    # given
    def rows():
        yield ("ZZA", "A", 2, True)
        raise Refused

    # when
    with pytest.raises(Refused), transaction.atomic():
        copy_rows("currencies", COLUMNS, rows())
    # then
    assert not Currency.objects.filter(code="ZZA").exists()


def test_a_query_made_while_rows_stream_is_refused_instead_of_waiting_forever():
    # given: a row source that reads the database (the connection is busy streaming)
    def rows():
        yield ("ZZA", "A", 2, True)
        yield ("ZZB", "B", Currency.objects.count(), True)

    # when
    with pytest.raises(RuntimeError, match="COPY"), transaction.atomic():
        copy_rows("currencies", COLUMNS, rows())
    # then: the connection is usable again and nothing was inserted
    assert not Currency.objects.filter(code__in=["ZZA", "ZZB"]).exists()


def test_a_copy_is_counted_like_a_query(django_assert_num_queries):
    # when / then
    with django_assert_num_queries(1) as captured:
        copy_rows("currencies", COLUMNS, iter([("ZZA", "A", 2, True)]))
    assert captured.captured_queries[0]["sql"].startswith("COPY currencies (code, name")
