"""Money movement services; each sub-module owns one kind of work, re-exported here."""

from transactions.services.adjustments import adjust_balance as adjust_balance
from transactions.services.batches import (
    BatchItemInput,
    apply_atomic_batch,
    create_batch,
    process_batch_chunk,
    resume_stalled_batches,
    start_batch,
)
from transactions.services.limits import check_limit as check_limit
from transactions.services.limits import save_limit as save_limit
from transactions.services.movements import (
    add_transaction_inserts,
    credit,
    debit,
    legs_for,
    lock_parties,
    new_transaction,
    on_movements_committed,
    plan_movement,
    reverse,
    schedule_after_commit,
    transaction_event,
    transfer,
    transition,
)
from transactions.services.pending import (
    cancel_pending_transaction,
    create_pending,
    process_pending_transaction,
    requeue_pending_transaction,
    requeue_stale_pending,
)
from transactions.services.schedules import (
    cancel_schedule,
    claim_due_runs,
    create_schedule,
    execute_scheduled_run,
    pause_schedule,
    record_run_outcome,
    requeue_stale_runs,
    resume_schedule,
    run_due_schedules,
)

__all__ = [
    "BatchItemInput",
    "add_transaction_inserts",
    "apply_atomic_batch",
    "cancel_pending_transaction",
    "cancel_schedule",
    "check_limit",
    "claim_due_runs",
    "create_batch",
    "create_pending",
    "create_schedule",
    "credit",
    "debit",
    "execute_scheduled_run",
    "legs_for",
    "lock_parties",
    "new_transaction",
    "on_movements_committed",
    "pause_schedule",
    "plan_movement",
    "process_batch_chunk",
    "process_pending_transaction",
    "record_run_outcome",
    "requeue_pending_transaction",
    "requeue_stale_pending",
    "requeue_stale_runs",
    "resume_schedule",
    "resume_stalled_batches",
    "reverse",
    "run_due_schedules",
    "save_limit",
    "schedule_after_commit",
    "start_batch",
    "transaction_event",
    "transfer",
    "transition",
]
