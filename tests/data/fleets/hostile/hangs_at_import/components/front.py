"""Entry point of hangs_at_import."""

while True:  # waits for a service that never comes up
    pass

METHODS = {"ping": {"accepts": {"who": "str"}, "returns": {"pong": "str"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self.name = name

    def ping(self, message):
        return {"pong": message["who"]}
