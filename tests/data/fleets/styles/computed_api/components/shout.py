"""Applies a mode to a text."""

METHODS = {"run": {"accepts": {"text": "str", "mode": "str"}, "returns": {"text": "str"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        pass

    def run(self, message):
        text = message["text"]
        return {"text": text.upper() if message["mode"] == "loud" else text.lower()}
