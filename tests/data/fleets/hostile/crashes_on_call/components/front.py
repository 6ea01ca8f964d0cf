"""Entry point of crashes_on_call: its only method ends the process."""

import os

METHODS = {"ping": {"accepts": {"who": "str"}, "returns": {"pong": "str"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self.name = name

    def ping(self, message):
        os._exit(3)  # "unreachable" error path that ends the server
