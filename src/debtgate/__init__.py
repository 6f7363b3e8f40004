"""debtgate: network-edge access enforcement with a captive portal."""

__version__ = "0.1.0"
