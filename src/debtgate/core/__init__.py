"""The pure core: set names and categories (``sets``), the desired kernel state of the
subscribers (``desired``), ``reconcile(desired, actual, now, scope) -> Plan``, the
mass-change guard (``guard``), transitions, placement and prefix carving. No I/O, no
asyncio; the clock is passed in. Everything above decides through it.
"""
