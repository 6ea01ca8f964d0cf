"""Entry point of writes_outside."""

with open("/tmp/switchyard-hostile-fleet-was-here", "w") as f:
    f.write("written at import")

METHODS = {"ping": {"accepts": {"who": "str"}, "returns": {"pong": "str"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self.name = name

    def ping(self, message):
        return {"pong": message["who"]}
