"""Requests that put old and new side by side: built from a declared message shape, with varied values.

A check that sends one tidy message per endpoint proves little: the values
that break code are the empty string, a negative or very large number, a
float where an int was usual, text outside ASCII, an empty list. Each field
of a shape takes its values from :data:`VALUES` by position, shifted per
field, so a handful of messages covers every value of every type and mixes
them differently across fields.
"""

from __future__ import annotations

from typing import Any

from engine.runtime.primitives import Message, MessageSchema

VALUES: dict[str, list[Any]] = {
    "str": ["smoke", "", "Zoë ✓ 東京 🚀", "  padded  ", "x" * 300, "line\nbreak\ttab", "-1", "NULL"],
    "int": [1, 0, -7, 2**53 + 1, 42, -1, 10**12, 3],
    "float": [1.5, 0.0, -2.75, 1e-9, 12345.678, 1e15, -0.1, 2.675],
    "bool": [True, False, False, True, True, False, True, False],
    "list": [[], [1, "a"], [{"k": 1}, None], ["ü", 2.5], [[]], [0], ["x" * 50], [True, -3]],
    "dict": [{}, {"k": "v"}, {"n": -1, "s": "ü", "f": 0.5}, {"nested": {"a": [1]}}, {"": ""}, {"id": 0}],
    "any": ["smoke", 0, -2.5, None, [], {"k": 1}, True, "ü"],
}
"""Per field type, the values varied messages take (the first is the tidy one a smoke test would send)."""

VARIANTS = 8
"""Messages per shape: enough that every value above appears for every field."""


def varied_messages(shape: MessageSchema, count: int = VARIANTS) -> list[Message]:
    """``count`` messages that fit ``shape``, the first with every field's first (tidy) value.

    An empty shape gives one empty message: there is nothing to vary.
    """
    if not shape:
        return [{}]
    messages = []
    for i in range(count):
        message = {}
        for offset, (field, type_name) in enumerate(sorted(shape.items())):
            values = VALUES.get(type_name, VALUES["any"])
            message[field] = values[(i + offset * (i > 0)) % len(values)]
        messages.append(message)
    return messages


def interleaved(per_key: dict[str, list[Message]]) -> list[tuple[str, Message]]:
    """Round robin over the keys (sorted): the order a stateful component sees a mixed workload in."""
    keys = sorted(per_key)
    longest = max((len(v) for v in per_key.values()), default=0)
    return [(k, per_key[k][i]) for i in range(longest) for k in keys if i < len(per_key[k])]
