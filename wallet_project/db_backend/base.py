"""The database backend: django-prometheus' PostgreSQL wrapper, with cheaper health checks.

With `CONN_HEALTH_CHECKS`, Django runs `SELECT 1` before the first query of every request
that reuses a connection: one round trip per request. What the check catches is a
connection that went stale while idle (a server restart, a dropped TCP session). Here a
connection idle for less than `HEALTH_CHECK_AFTER_IDLE` seconds since its previous request
(and that met no database error there) is trusted; one idle for longer is checked as before.
"""

import time

from django_prometheus.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_boundary_at: float | None = None

    def close_if_unusable_or_obsolete(self) -> None:
        """Called at the start and at the end of every request (Django's request signals)."""
        now = time.monotonic()
        idle = None if self.request_boundary_at is None else now - self.request_boundary_at
        self.request_boundary_at = now
        errors = self.errors_occurred
        super().close_if_unusable_or_obsolete()
        limit = self.settings_dict.get("HEALTH_CHECK_AFTER_IDLE", 0)
        if self.connection is not None and not errors and idle is not None and idle < limit:
            self.health_check_done = True

    def close(self) -> None:
        super().close()
        self.request_boundary_at = None
