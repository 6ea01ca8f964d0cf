class Component:
    """Stock that bakes another batch whenever an order would empty it."""

    def __init__(self, name, config, call):
        self.left = config["start"]
        self.batch = config["batch"]
        self.batches = 0

    def take(self, message):
        qty = message["qty"]
        while qty > self.left:
            if self.batches >= 50:
                return {"ok": False, "why": "the oven is full for today"}
            self.left += self.batch
            self.batches += 1
        self.left -= qty
        return {"ok": True, "left": self.left, "batches": self.batches}
