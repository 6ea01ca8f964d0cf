"""A Calculator (no recipe for it): adds two integers."""

METHODS = {"add": {"accepts": {"a": "int", "b": "int"}, "returns": {"sum": "int"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        pass

    def add(self, message):
        return {"sum": message["a"] + message["b"]}
