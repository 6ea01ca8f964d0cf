"""The journal: one balance per account, every posting numbered, fees charged on withdrawals."""

from decimal import Decimal

CENT = Decimal("0.01")


def money(value):
    return Decimal(repr(value)).quantize(CENT)


class _Accounts:
    def __init__(self, name, config, call):
        self.call = call
        self.overdraft = money(config["overdraft"])
        self.limit = money(config["limit"])
        self.balances = {}
        self.entries = 0

    def _balance(self, account):
        return self.balances.get(account, Decimal("0.00"))


class Component(_Accounts):
    def post(self, message):
        account, amount = message["account"].strip(), money(message["amount"])
        if not account:
            raise ValueError("a posting needs an account")
        if abs(amount) > self.limit:
            raise ValueError(f"{amount} is beyond the posting limit")
        fee = Decimal("0.00")
        if amount < 0:
            fee = money(self.call("fees.compute", {"amount": float(-amount)})["fee"])
        after = self._balance(account) + amount - fee
        if after < -self.overdraft:
            return {
                "ok": False,
                "account": account,
                "why": "overdraft limit",
                "balance": float(self._balance(account)),
            }
        self.balances[account] = after
        self.entries += 1
        seen = self.call("audit.record", {"account": account, "amount": float(amount)})
        return {
            "ok": True,
            "entry": self.entries,
            "account": account,
            "fee": float(fee),
            "balance": float(after),
            "postings_for_account": seen["count"],
        }
