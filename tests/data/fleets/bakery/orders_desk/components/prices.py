# Prices are kept in euros as floats in the config; money leaves this module rounded to the cent,
# half up, the way the till rounds.
from decimal import ROUND_HALF_UP, Decimal


def cents(value):
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


class Component:
    def __init__(self, name, config, call):
        self.items = dict(config["items"])
        self.vat = config["vat"]
        self.each = config["special_order_each"]
        self.currency = config.get("currency", "EUR")

    def quote(self, message):
        item, qty = message["item"], message["qty"]
        special = item not in self.items
        net = (self.each if special else self.items[item]) * qty
        return {
            "ok": True,
            "item": item,
            "special_order": special,
            "qty": qty,
            "net": cents(net),
            "gross": cents(net * (1 + self.vat)),
            "currency": self.currency,
        }

    def menu(self, message):
        return {
            "currency": self.currency,
            "items": [{"name": n, "price": cents(p * (1 + self.vat))} for n, p in sorted(self.items.items())],
        }
