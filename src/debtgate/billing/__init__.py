"""Billing in: the source contract (``base``: snapshots, deltas, columns), the file and
PostgreSQL sources (``file``, ``filerows``; ``postgres``, ``pgsync``, ``pgfetch``,
``pgcopy``, ``coalesce``), and the validation of rows into subscribers or rejections
(``validate``, ``validate_bulk``: pure).

Below :mod:`debtgate.enforce`, which consumes what the sources emit; knows nothing of the
kernel. A new billing source is a new module here implementing ``base.BillingSource``.
"""
