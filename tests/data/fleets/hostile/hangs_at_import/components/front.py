"""Entry point of hangs_at_import."""

import time

while True:  # waits for a service that never comes up (a busy loop is tests/sandbox/test_sandbox.py's)
    time.sleep(0.05)

METHODS = {"ping": {"accepts": {"who": "str"}, "returns": {"pong": "str"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self.name = name

    def ping(self, message):
        return {"pong": message["who"]}
