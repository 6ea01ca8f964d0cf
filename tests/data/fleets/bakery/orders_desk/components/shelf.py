import unicodedata


class Component:
    """Special orders: anything not on the menu is made to order, so the shelf never runs out."""

    def __init__(self, name, config, call):
        self.how = config
        self.made = {}

    def take(self, message):
        label = unicodedata.normalize("NFC", message["item"]).strip().title() or "Überraschung"
        self.made[label] = self.made.get(label, 0) + message["qty"]
        return {"ok": True, "left": None, "label": label, "made_so_far": self.made[label], "how": self.how}
