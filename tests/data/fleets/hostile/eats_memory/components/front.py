"""Entry point of eats_memory."""

_cache = []
while True:  # a cache warmed without a bound
    _cache.append(bytearray(16 << 20))

METHODS = {"ping": {"accepts": {"who": "str"}, "returns": {"pong": "str"}}}
SENDS = {}


class Component:
    def __init__(self, name, config, call):
        self.name = name

    def ping(self, message):
        return {"pong": message["who"]}
