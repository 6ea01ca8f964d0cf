import re
from decimal import ROUND_HALF_EVEN, Decimal

_RULE = re.compile(r"(?P<rate>[\d.]+)%\s+min\s+(?P<minimum>[\d.]+)")


class Component:
    def __init__(self, name, config, call):
        rule = _RULE.fullmatch(config.strip())
        self.rate = Decimal(rule["rate"]) / 100
        self.minimum = Decimal(rule["minimum"])

    def compute(self, message):
        amount = abs(Decimal(repr(message["amount"])))
        fee = max(self.minimum, (amount * self.rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
        return {"fee": float(fee), "rule": f"{self.rate * 100}% min {self.minimum}"}
