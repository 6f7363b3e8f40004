"""The captive portal (aiohttp), run as `debtgate portal`."""
