"""Reconciliation: check the ledger invariants and the audit trail, record the outcome."""

import logging
import time

from django.db import connection
from django.utils import timezone

from audit.models import AuditSeal, ReconciliationRun
from audit.sealing import verify_seal

logger = logging.getLogger("wallet.reconciliation")

LEDGER_CHECKS = {
    "zero_sum_per_currency": """
        SELECT c.code,
               coalesce((SELECT sum(amount) FROM balances b WHERE b.currency = c.code), 0)
             + coalesce((SELECT sum(delta) FROM balance_entries e
                         WHERE e.currency = c.code AND e.balance_id IS NULL), 0)
        FROM currencies c
    """,
    "balance_equals_entries": """
        SELECT b.id, b.amount::text, coalesce(e.s, 0)::text FROM balances b
        LEFT JOIN (SELECT balance_id, sum(delta) s, count(*) n FROM balance_entries
                   WHERE balance_id IS NOT NULL GROUP BY balance_id) e ON e.balance_id = b.id
        WHERE b.amount <> coalesce(e.s, 0) OR b.entry_count <> coalesce(e.n, 0)
        LIMIT 50
    """,
    "balance_equals_last_balance_after": """
        SELECT b.id, b.amount::text, last.balance_after::text FROM balances b
        JOIN LATERAL (SELECT balance_after FROM balance_entries e
                      WHERE e.user_id = b.user_id AND e.currency = b.currency
                      ORDER BY created_at DESC, id DESC LIMIT 1) last ON true
        WHERE last.balance_after <> b.amount
        LIMIT 50
    """,
    "no_negative_balance": "SELECT id, amount::text FROM balances WHERE amount < 0 LIMIT 50",
    "transaction_entries_sum_to_zero": """
        SELECT transaction_id::text, sum(delta)::text FROM balance_entries
        GROUP BY transaction_id HAVING sum(delta) <> 0 LIMIT 50
    """,
}


def _ledger_problems(cursor) -> tuple[dict, list[dict]]:
    checks: dict[str, str] = {}
    problems: list[dict] = []
    for name, sql in LEDGER_CHECKS.items():
        cursor.execute(sql)
        rows = cursor.fetchall()
        if name == "zero_sum_per_currency":
            rows = [(code, str(total)) for code, total in rows if total != 0]
        checks[name] = "ok" if not rows else "drift"
        problems.extend({"check": name, "row": [str(v) for v in row]} for row in rows)
    return checks, problems


def _chain_problems(cursor) -> tuple[str, list[dict]]:
    """Cheap trail checks for every run: balance heads against their newest events, and
    the newest seals (the full walk is `manage.py verify_audit`)."""
    problems: list[dict] = []
    cursor.execute(
        """
        SELECT b.id FROM balances b
        LEFT JOIN LATERAL (SELECT hash FROM audit_logs a WHERE a.chain = 'balance:' || b.id
                           ORDER BY a.id DESC LIMIT 1) h ON true
        WHERE (b.entry_count > 0 OR b.head_hash <> '') AND h.hash IS DISTINCT FROM b.head_hash
        LIMIT 50
        """
    )
    problems.extend(
        {"check": "audit_chain", "balance_id": row[0], "reason": "chain head mismatch"}
        for row in cursor.fetchall()
    )
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
    with connection.cursor() as cursor:
        checks, problems = _ledger_problems(cursor)
        checks["audit_chain"], chain_problems = _chain_problems(cursor)
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
