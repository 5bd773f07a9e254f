"""The one rule every write obeys whoever calls it (API, console, task, command):
auditors read everything and change nothing."""

from accounts.models import User
from wallet_project.errors import PermissionDeniedError

READ_ONLY_MESSAGE = "Auditors have read-only access: this changes data."


def ensure_may_change(actor: User | None) -> None:
    """Raise PermissionDeniedError if `actor` has a read-only role. `None` is the system."""
    if actor is not None and actor.is_auditor:
        raise PermissionDeniedError(READ_ONLY_MESSAGE)
