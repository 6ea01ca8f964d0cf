"""Frontdesk: the practice's public interface (booking, triage, prices)."""

from dataclasses import dataclass

METHODS = {
    "book": {"accepts": {"patient": "str", "day": "int", "hour": "int"}},
    "triage": {"accepts": {"symptoms": "list", "age": "int"}},
    "price": {"accepts": {"visit": "str", "minutes": "float"}},
}


@dataclass(frozen=True)
class Slot:
    day: int
    hour: int

    def open_at(self, hours):
        return 0 <= self.day <= 365 and self.hour in hours


class Component:
    def __init__(self, name, config, call):
        self.call = call
        self.hours = tuple(config["hours"])
        self.practice = config["practice"]

    def book(self, message):
        slot = Slot(message["day"], message["hour"])
        if not slot.open_at(self.hours):
            return {"booked": False, "why": f"Praxis geschlossen (Tag {slot.day}, {slot.hour} Uhr)"}
        reserved = self.call(
            "calendar.reserve", {"day": slot.day, "hour": slot.hour, "patient": message["patient"]}
        )
        if not reserved["ok"]:
            return {"booked": False, "why": reserved["why"]}
        text = self.call(
            "notifier.confirm",
            {"patient": message["patient"], "day": slot.day, "hour": slot.hour, "practice": self.practice},
        )
        return {"booked": True, "number": reserved["number"], "text": text["text"]}

    def triage(self, message):
        return self.call("triage_rules.assess", message)

    def price(self, message):
        return self.call("billing.quote", message)
