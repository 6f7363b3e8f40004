"""RADIUS CoA / Disconnect-Message and accounting."""
