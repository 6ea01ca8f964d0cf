class Component:
    def __init__(self, name, config, call):
        self.base = config["base"]
        self.per_minute = config["per_minute"]
        self.factor = config["visits"]

    def quote(self, message):
        minutes = max(0.0, float(message["minutes"]))
        factor = self.factor.get(message["visit"], 1.25)
        total = (self.base + self.per_minute * minutes) * factor
        return {"visit": message["visit"], "minutes": round(minutes, 1), "total_eur": round(total, 2)}
