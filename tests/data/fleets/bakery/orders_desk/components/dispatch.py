"""Router: the goods come from the oven, the cold room or the shelf (special orders)."""


class Component:
    def __init__(self, name, config, call):
        self.call = call
        self.where = {item: rule["to"] for rule in config["rules"] for item in rule["when"]}
        self.otherwise = config["otherwise"]
        self.orders = 0

    def route(self, message):
        item, qty = message["item"], message["qty"]
        place = self.where.get(item, self.otherwise)
        price = self.call("prices.quote", {"item": item, "qty": qty})
        taken = self.call(place + ".take", {"item": item, "qty": qty})
        if not taken["ok"]:
            return {"ok": False, "from": place, "why": taken["why"]}
        self.orders += 1
        return {
            "ok": True,
            "order_no": f"B-{self.orders:05d}",
            "from": place,
            "pay": price["gross"],
            "currency": price["currency"],
            "left": taken.get("left"),
        }
