"""Entry point of hoards_on_call: each request keeps 2 GiB more in a module-level list."""

METHODS = {"ping": {"accepts": {"who": "str"}, "returns": {"pong": "str"}}}
SENDS = {}

_kept = []


class Component:
    def __init__(self, name, config, call):
        self.name = name

    def ping(self, message):
        for _ in range(128):  # 2 GiB per request, never released
            _kept.append(bytearray(16 << 20))
        return {"pong": message["who"]}
