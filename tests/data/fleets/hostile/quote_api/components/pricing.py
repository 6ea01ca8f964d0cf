"""Adds tax to a net amount."""

METHODS = {"gross": {"accepts": {"net": "float"}, "returns": {"gross": "float"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self._rate = float(config.get("tax_rate", 0.0))

    def gross(self, message):
        return {"gross": round(message["net"] * (1 + self._rate), 2)}
