class _Converts:
    def convert(self, message):
        currency = message["currency"]
        if currency not in self.rates:
            return {"ok": False, "why": f"no rate for {currency!r}", "known": sorted(self.rates)}
        value = message["amount"] * self.rates[currency]
        digits = 0 if currency == "JPY" else 2
        return {"ok": True, "currency": currency, "amount": round(value, digits)}


class Component(_Converts):
    def __init__(self, name, config, call):
        self.rates = {}
        for entry in config:
            code, rate = entry.split(":")
            self.rates[code] = float(rate)
