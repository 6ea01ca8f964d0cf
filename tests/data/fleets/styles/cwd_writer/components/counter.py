"""Counts visits in visits.json, relative to the working folder."""

import json
import os

METHODS = {"visit": {"accepts": {"who": "str"}, "returns": {"count": "int"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self.path = "visits.json"

    def visit(self, message):
        count = json.load(open(self.path))["count"] + 1 if os.path.exists(self.path) else 1
        with open(self.path, "w") as f:
            json.dump({"count": count}, f)
        return {"count": count}
