"""The entry of frontend_api, typed Frontend (no recipe for it)."""

METHODS = {"add": {"accepts": {"a": "int", "b": "int"}, "returns": {"sum": "int"}}}
SENDS = {"math.add": {"a": "int", "b": "int"}}


class Component:
    def __init__(self, name, config, call):
        self.call = call

    def add(self, message):
        return self.call("math.add", {"a": message["a"], "b": message["b"]})
