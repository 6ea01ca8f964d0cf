METHODS = {"gross": {"accepts": {"net": "float"}, "returns": {"gross": "float"}}}


class Component:
    def __init__(self, name, config, call):
        self.rate = config["tax_rate"]

    def gross(self, message):
        return {"gross": round(message["net"] * (1 + self.rate), 2)}
