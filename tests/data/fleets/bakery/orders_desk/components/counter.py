"""The shop tablets' entry point (bakery shop-systems team, 2021).

Only what a tablet may call is listed in METHODS; the rest of the class is ours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

METHODS = {
    "quote": {"accepts": {"item": str, "qty": int}},
    "order": {"accepts": {"item": str, "qty": int, "customer": str}},
    "menu": {"accepts": {}},
}


class Component:
    def __init__(self, name: str, config: dict[str, Any], call: Callable[[str, dict], dict]) -> None:
        self._call = call
        self._greeting = config.get("greeting", "Hello")

    def quote(self, message: dict) -> dict:
        return self._call("prices.quote", {"item": message["item"], "qty": message["qty"]})

    def order(self, message: dict) -> dict:
        if message["qty"] <= 0:
            return {"accepted": False, "why": "qty must be at least 1"}
        result = self._call("dispatch.route", dict(message))
        return {"accepted": result["ok"], "hello": self._salute(message["customer"]), **result}

    def menu(self, message: dict) -> dict:
        return self._call("prices.menu", {})

    def _salute(self, customer: str) -> str:
        return f"{self._greeting}, {customer.strip() or 'Kundschaft'}!"
