"""Entry point of quote_api: hands the net amount to pricing."""

METHODS = {"quote": {"accepts": {"net": "float"}, "returns": {"gross": "float"}}}
SENDS = {"pricing.gross": {"net": "float"}}


class Component:
    def __init__(self, name, config, call):
        self._call = call

    def quote(self, message):
        return self._call("pricing.gross", {"net": message["net"]})
