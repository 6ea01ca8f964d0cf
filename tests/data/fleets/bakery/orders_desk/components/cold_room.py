class Component:
    def __init__(self, name, config, call):
        self.left, self.note = config[0], config[1]

    def take(self, message):
        if message["qty"] > self.left:
            return {"ok": False, "why": f"nur noch {self.left} da ({self.note})"}
        self.left -= message["qty"]
        return {"ok": True, "left": self.left}
