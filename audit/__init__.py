"""The audit trail: the event stream of every state change.

Recording (`models`, `services`, `chain`, `sealing`, `selectors`) sits above money and below
every app that records events; it refers to users only through AUTH_USER_MODEL. The tools
(`replay`, `verification`, `reconciliation`) sit above `balances`, whose selectors and
services they use. The interfaces (views, serializers, admin, tasks, commands, metrics) sit
above them all.
"""
