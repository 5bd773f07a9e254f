"""Independent checks of the ledger invariants, written in plain SQL for the tests."""

from django.db import connection

INVARIANTS = {
    "entries of every transaction sum to zero": """
        SELECT transaction_id FROM balance_entries GROUP BY transaction_id HAVING sum(delta) <> 0
    """,
    "per currency, user balances plus world entries sum to zero": """
        SELECT c.code FROM currencies c
        WHERE coalesce((SELECT sum(amount) FROM balances b WHERE b.currency = c.code), 0)
            + coalesce((SELECT sum(delta) FROM balance_entries e
                        WHERE e.currency = c.code AND e.balance_id IS NULL), 0) <> 0
    """,
    "each balance equals the sum of its entries": """
        SELECT b.id FROM balances b
        LEFT JOIN (SELECT balance_id, sum(delta) s, count(*) n FROM balance_entries
                   WHERE balance_id IS NOT NULL GROUP BY balance_id) e ON e.balance_id = b.id
        WHERE b.amount <> coalesce(e.s, 0) OR b.entry_count <> coalesce(e.n, 0)
    """,
    "each balance equals its newest entry's balance_after": """
        SELECT b.id FROM balances b
        JOIN LATERAL (SELECT balance_after FROM balance_entries e
                      WHERE e.user_id = b.user_id AND e.currency = b.currency
                      ORDER BY created_at DESC, id DESC LIMIT 1) last ON true
        WHERE last.balance_after <> b.amount
    """,
    "no negative balance": "SELECT id FROM balances WHERE amount < 0",
    "completed transactions have entries, others none": """
        SELECT t.id FROM transactions t
        WHERE (t.status IN ('completed', 'reversed')) <>
              EXISTS (SELECT 1 FROM balance_entries e WHERE e.transaction_id = t.id)
    """,
}


def ledger_violations() -> dict[str, list]:
    found = {}
    with connection.cursor() as cursor:
        for name, sql in INVARIANTS.items():
            cursor.execute(sql)
            rows = [r[0] for r in cursor.fetchall()]
            if rows:
                found[name] = rows[:10]
    return found


def assert_ledger_holds() -> None:
    violations = ledger_violations()
    assert not violations, f"ledger invariants broken: {violations}"
