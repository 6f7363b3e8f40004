"""The ``debtgate`` command (``main``): ``run``, ``portal``, ``check-config`` (with the
``preflight`` checks), ``lab``, and the client commands that ask a running daemon
(``commands``, ``client``, ``format``). The top layer: nothing imports it.
"""
