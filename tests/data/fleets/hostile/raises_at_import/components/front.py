"""Entry point of raises_at_import."""

import os

REGION = os.environ["FLEET_REGION_THAT_IS_NEVER_SET"]  # KeyError at import

METHODS = {"ping": {"accepts": {"who": "str"}, "returns": {"pong": "str"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self.name = name

    def ping(self, message):
        return {"pong": message["who"]}
