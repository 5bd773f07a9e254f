"""Reconciliation: check the ledger invariants and the audit trail, record the outcome.

The invariants are the queries of `balances.selectors`; this records what they find.
"""

import logging
import time

from django.utils import timezone

from audit.models import AuditSeal, ReconciliationRun
from audit.sealing import verify_seal
from balances.selectors import ledger_invariant_violations, list_balances_off_their_chain_head

logger = logging.getLogger("wallet.reconciliation")


def _ledger_problems() -> tuple[dict, list[dict]]:
    checks: dict[str, str] = {}
    problems: list[dict] = []
    for name, rows in ledger_invariant_violations().items():
        checks[name] = "ok" if not rows else "drift"
        problems.extend({"check": name, "row": [str(v) for v in row]} for row in rows)
    return checks, problems


def _chain_problems() -> tuple[str, list[dict]]:
    """Cheap trail checks for every run: balance heads against their newest events, and
    the newest seals (the full walk is `manage.py verify_audit`)."""
    problems: list[dict] = [
        {"check": "audit_chain", "balance_id": balance_id, "reason": "chain head mismatch"}
        for balance_id in list_balances_off_their_chain_head()
    ]
    seals = list(AuditSeal.objects.order_by("-id")[:3])[::-1]
    prev = AuditSeal.objects.filter(id__lt=seals[0].id).order_by("-id").first() if seals else None
    for seal in seals:
        reason = verify_seal(seal, prev=prev)
        if reason:
            problems.append({"check": "audit_chain", "seal_id": seal.pk, "reason": reason})
        prev = seal
    return ("ok" if not problems else "broken"), problems


def reconcile() -> ReconciliationRun:
    """Check every ledger invariant and the audit trail; record and log the outcome."""
    from audit.sealing import seal_audit_stream

    started_at = timezone.now()
    began = time.perf_counter()
    seal_audit_stream()
    checks, problems = _ledger_problems()
    checks["audit_chain"], chain_problems = _chain_problems()
    problems.extend(chain_problems)
    run = ReconciliationRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        ok=not problems,
        checks={**checks, "duration_ms": round((time.perf_counter() - began) * 1000, 1)},
        problems=problems[:200],
    )
    if problems:
        logger.error(
            "ledger drift detected",
            extra={"reconciliation_id": run.pk, "problems": problems[:20]},
        )
    else:
        logger.info("ledger reconciled", extra={"reconciliation_id": run.pk})
    return run
