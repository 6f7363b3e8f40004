"""What the daemon answers: the management API for the NOC and the CLI (``mgmt``,
``auth``, ``openapi``, ``admin``: status, explain, overrides, guard), its Prometheus
``metrics``, and the portal's local channel (``portal_channel``: the view, acks).

Above :mod:`debtgate.enforce` (it reads the engine through :mod:`debtgate.host`), below
:mod:`debtgate.daemon`, which runs it as an extension (``extension``).
"""
