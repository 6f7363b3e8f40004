"""Self-service from the stub page: promised payment and resuming a pause (``service``),
the local eligibility and rate rules (``policy``: pure), the billing's hooks (``hooks``:
a SQL function or a signed webhook).
"""
