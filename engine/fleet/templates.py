"""Component code for the sample fleet: one template per v1 component type.

A generated system's behaviour is set entirely by its blueprint
``configuration``: every component of a type runs the same code, as the
output of a code generator would. That is what lets a later conversion turn
each component into a config-driven port recipe and still answer the same.

Each template is the body of ``class Component`` (see the contract in
:mod:`engine.runtime.legacy`). ``ENDPOINT_METHODS`` types get one thin method
per configured endpoint or action, generated from the configuration.
"""

from __future__ import annotations

INIT = """
    def __init__(self, name, config, call):
        self.name = name
        self.config = config
        self.call = call
"""

BODIES: dict[str, str] = {
    "APIGateway": """
    def _forward(self, endpoint, message):
        target = self.config["routes"][endpoint]
        return {"status": "ok", "endpoint": endpoint, "data": self.call(target, dict(message))}
""",
    "Controller": """
    def _act(self, action, message):
        spec = self.config["actions"][action]
        missing = [f for f in spec.get("require", []) if message.get(f) in (None, "")]
        if missing:
            return {"ok": False, "action": action, "error": "missing " + ", ".join(missing)}
        payload = {spec["wrap"]: dict(message)} if spec.get("wrap") else dict(message)
        result = self.call(spec["call"], payload)
        if spec.get("also"):
            self.call(spec["also"], {"action": action})
        return {"ok": True, "action": action, "result": result}
""",
    "DataStore": """
        self.records = {}
        self.next_id = 1

    def insert(self, message):
        if len(self.records) >= self.config.get("capacity", 1000):
            return {"stored": False, "error": "store is full"}
        record = dict(message["record"])
        record[self.config.get("key_field", "id")] = self.next_id
        self.records[self.next_id] = record
        self.next_id += 1
        return {"stored": True, "id": self.next_id - 1, "record": record}

    def get(self, message):
        record = self.records.get(message["id"])
        return {"found": record is not None, "record": record or {}}

    def list(self, message):
        return {"records": [self.records[k] for k in sorted(self.records)], "count": len(self.records)}
""",
    "Processor": """
    def process(self, message):
        field, operation = self.config["field"], self.config["operation"]
        value = str(message[field])
        if operation == "upper":
            value = value.upper()
        elif operation == "lower":
            value = value.lower()
        elif operation == "reverse":
            value = value[::-1]
        elif operation == "greet":
            value = "Hello, " + value + "!"
        elif operation == "prefix":
            value = self.config.get("prefix", "") + value
        out = dict(message)
        out[field] = value
        if self.config.get("next"):
            return self.call(self.config["next"], out)
        return out
""",
    "Filter": """
    def filter(self, message):
        value, limit = message.get(self.config["field"]), self.config["value"]
        operation = self.config["op"]
        if operation == "eq":
            keep = value == limit
        elif operation == "ne":
            keep = value != limit
        elif operation == "gt":
            keep = isinstance(value, (int, float)) and value > limit
        elif operation == "lt":
            keep = isinstance(value, (int, float)) and value < limit
        else:
            keep = str(limit) in str(value)
        if not keep:
            return {"passed": False, "field": self.config["field"]}
        if self.config.get("next"):
            return {"passed": True, "result": self.call(self.config["next"], dict(message))}
        return {"passed": True, "result": dict(message)}
""",
    "Router": """
    def route(self, message):
        key = str(message.get(self.config["route_field"]))
        target = self.config["routes"].get(key, self.config["default"])
        return {"routed_to": target, "result": self.call(target, dict(message))}
""",
    "Aggregator": """
    def aggregate(self, message):
        records = []
        for source in self.config["sources"]:
            records.extend(self.call(source, {}).get("records", []))
        field = self.config.get("field")
        numbers = [r[field] for r in records if isinstance(r.get(field), (int, float))] if field else []
        operation = self.config["operation"]
        if operation == "count":
            value = len(records)
        elif operation == "sum":
            value = sum(numbers)
        elif operation == "max":
            value = max(numbers, default=0)
        else:
            value = min(numbers, default=0)
        return {"operation": operation, "value": value, "sources": len(self.config["sources"])}
""",
    "Cache": """
        self.entries = {}

    def get(self, message):
        key = message["id"]
        if key in self.entries:
            return dict(self.entries[key], cached=True)
        result = self.call(self.config["backend"], {"id": key})
        if len(self.entries) >= self.config.get("max_entries", 128):
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = result
        return dict(result, cached=False)
""",
    "MessageQueue": """
        self.items = []

    def publish(self, message):
        self.items.append(dict(message["payload"]))
        if len(self.items) > self.config.get("capacity", 100):
            self.items.pop(0)
        delivered = None
        if self.config.get("consumer"):
            delivered = self.call(self.config["consumer"], {"record": dict(message["payload"])})
        return {"queued": len(self.items), "delivered": delivered is not None}
""",
    "Validator": """
    def validate(self, message):
        missing = [f for f in self.config["required"] if message.get(f) in (None, "")]
        if missing:
            return {"valid": False, "missing": missing}
        if self.config.get("next"):
            return {"valid": True, "result": self.call(self.config["next"], dict(message))}
        return {"valid": True, "result": dict(message)}
""",
    "Scheduler": """
    def tick(self, message):
        results = [self.call(job, {}) for job in self.config["jobs"]]
        return {"tick": message["tick"], "ran": len(results), "results": results}
""",
    "EventSource": """
    def poll(self, message):
        count = max(0, min(message["count"], self.config.get("batch", 10)))
        kinds = self.config["kinds"]
        events = [
            {"seq": i, "kind": kinds[i % len(kinds)], "value": (i * self.config.get("step", 7)) % 100}
            for i in range(1, count + 1)
        ]
        results = []
        if self.config.get("next"):
            results = [self.call(self.config["next"], event) for event in events]
        return {"emitted": len(events), "results": results}
""",
    "MetricsSink": """
        self.count = 0
        self.total = 0

    def record(self, message):
        self.count += 1
        value = message.get(self.config["field"], 0)
        self.total += value if isinstance(value, (int, float)) else 0
        return {"metric": self.config["metric"], "count": self.count, "total": self.total}
""",
    "Notifier": """
    def notify(self, message):
        text = self.config["template"].replace("{message}", str(message["message"]))
        return {"sent": True, "channel": self.config["channel"], "text": text}
""",
    "Authenticator": """
    def authenticate(self, message):
        if not str(message.get(self.config.get("token_field", "token"), "")):
            return {"authenticated": False}
        forwarded = {k: v for k, v in message.items() if k != self.config.get("token_field", "token")}
        return {"authenticated": True, "result": self.call(self.config["next"], forwarded)}
""",
}

ENDPOINT_METHODS = {"APIGateway": ("routes", "_forward"), "Controller": ("actions", "_act")}
"""Types whose methods are the keys of a configuration mapping, each delegating to one helper."""


def render_component(
    *,
    system: str,
    name: str,
    type_: str,
    description: str,
    config: dict,
    methods: dict,
    sends: dict,
    extra_import: str | None = None,
) -> str:
    """The full text of ``components/<name>.py``."""
    lines = [
        f'"""{type_} component `{name}` of {system}: {description}',
        "",
        "Generated by the Switchyard sample fleet generator; its behaviour is set by",
        "the `configuration` of this component in blueprint.yaml.",
        '"""',
        "",
    ]
    if extra_import:
        lines += [extra_import, ""]
    lines += [f"METHODS = {_literal(methods)}", "", f"SENDS = {_literal(sends)}", "", "", "class Component:"]
    extra = BODIES[type_].lstrip("\n")
    body = INIT.rstrip("\n") + ("\n\n" if extra.startswith("    def") else "\n") + extra
    if type_ in ENDPOINT_METHODS:
        key, helper = ENDPOINT_METHODS[type_]
        for endpoint in config[key]:
            body += f"\n    def {endpoint}(self, message):\n"
            body += f"        return self.{helper}({endpoint!r}, message)\n"
    lines.append(body.strip("\n"))
    return "\n".join(lines) + "\n"


def _literal(value: dict) -> str:
    """A stable, readable Python literal for a nested dict of strings."""
    if not value:
        return "{}"
    parts = []
    for key in value:
        inner = value[key]
        if isinstance(inner, dict):
            parts.append(f"    {key!r}: {_inline(inner)},")
        else:
            parts.append(f"    {key!r}: {inner!r},")
    return "{\n" + "\n".join(parts) + "\n}"


def _inline(value: dict) -> str:
    items = ", ".join(f"{k!r}: {_inline(v) if isinstance(v, dict) else repr(v)}" for k, v in value.items())
    return "{" + items + "}"
