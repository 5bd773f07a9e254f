"""The one place that locks user rows.

A user row's lock is also the lock of the user's audit chain (`user:<id>`): its events are
appended while it is held. In the global lock order (see `balances.locks`) user rows come
after transaction rows and before balance rows.
"""

from django.db import connection


def lock_user_row(*, user_id: int) -> None:
    """Lock one user row (the `user:<id>` chain). Order: users before balances."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", [user_id])
