METHODS = {"quote": {"accepts": {"net": "float"}, "returns": {"gross": "float"}}}
SENDS = {"pricing.gross": {"net": "float"}}


class Component:
    def __init__(self, name, config, call):
        self.call = call

    def quote(self, message):
        return self.call("pricing.gross", {"net": message["net"]})
