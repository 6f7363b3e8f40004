"""The daemon process: one loop owner (``app``: ``asyncio.Runner`` with uvloop, one
TaskGroup of named tasks, signals, sd_notify through ``sdnotify``), and the extensions it
runs beside the engine (``extensions``: the portal channel, the management API,
self-service, RADIUS, the DNS garden in ``dnsgarden``).
"""
