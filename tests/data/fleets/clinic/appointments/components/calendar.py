# Bookings live here, in memory; the practice restarts the service every night.


class Component:
    def __init__(self, name, config, call):
        self.max_per_day = config["max_per_day"]
        self.taken = {}
        self.count = 0

    def reserve(self, message):
        day, hour = message["day"], message["hour"]
        on_day = [h for (d, h) in self.taken if d == day]
        if (day, hour) in self.taken:
            return {"ok": False, "why": f"{hour}:00 ist schon vergeben"}
        if len(on_day) >= self.max_per_day:
            return {"ok": False, "why": f"Tag {day} ist voll"}
        self.count += 1
        self.taken[(day, hour)] = message["patient"]
        return {"ok": True, "number": self.count, "that_day": len(on_day) + 1}

    def _debug_dump(self):
        return dict(self.taken)
