"""Balances and balance entries: the one writer of both (`services`, `locks`), their reads and
the ledger's invariants (`selectors`). Above audit (a movement records its balance events),
below accounts and transactions."""
