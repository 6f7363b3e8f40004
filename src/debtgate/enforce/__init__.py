"""Billing state to kernel state: the engine (``engine``, ``portal_side``,
``announce``, ``turn``: payments first, ``slicing``), the subscribers in memory
(``inventory``, ``deltas``, ``snapshot_news``), overrides, the persisted last applied
state (``persist``), the audit trail, and what gateways share in the billing database
(``shared``).

Uses :mod:`debtgate.core` for every decision, :mod:`debtgate.kernel` to apply them and
the event types of :mod:`debtgate.billing`.
"""
