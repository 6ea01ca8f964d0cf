"""The gateway of computed_api: its METHODS are built by a comprehension, not written out."""

ENDPOINTS = ["loud", "quiet"]
METHODS = {name: {"accepts": {"text": "str"}, "returns": {"text": "str"}} for name in ENDPOINTS}
SENDS = {"shout.run": {"text": "str", "mode": "str"}}


class Component:
    def __init__(self, name, config, call):
        self.call = call

    def loud(self, message):
        return self.call("shout.run", {"text": message["text"], "mode": "loud"})

    def quiet(self, message):
        return self.call("shout.run", {"text": message["text"], "mode": "quiet"})
