METHODS = {
    "post": {"accepts": {"account": "str", "amount": "float"}, "returns": {"balance": "float"}},
    "fee": {"accepts": {"amount": "float"}},
    "convert": {"accepts": {"amount": "float", "currency": "str"}},
}
SENDS = {
    "journal.post": {"account": "str", "amount": "float"},
    "fees.compute": {"amount": "float"},
    "fx.convert": {"amount": "float", "currency": "str"},
}


class Component:
    def __init__(self, name, config, call):
        self.call = call

    def post(self, message):
        return self.call("journal.post", {"account": message["account"], "amount": message["amount"]})

    def fee(self, message):
        return self.call("fees.compute", {"amount": message["amount"]})

    def convert(self, message):
        return self.call("fx.convert", {"amount": message["amount"], "currency": message["currency"].upper()})
