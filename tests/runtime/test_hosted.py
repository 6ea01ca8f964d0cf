"""A hosted component runs its v1 code behind ports and answers, and fails, word for word as v1 does."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.models.blueprint_v1 import load_v1_blueprint
from engine.models.blueprint_v2 import V2Blueprint
from engine.runtime.legacy import LegacySystem, RpcError
from engine.runtime.port_system import PortCallError, PortSystem

BLUEPRINT = """
system:
  name: tills
  description: hand-written, logic in code
  version: "3"
  components:
    - name: front
      type: APIGateway
      configuration: [checkout, refund]
      calls: [till.ring, till.refund, vault.peek]
    - {name: till, type: Register, configuration: {currency: EUR, rounding: 2}, calls: [vault.deposit]}
    - {name: vault, type: Safe, calls: []}
"""

FRONT = """
    METHODS = {"checkout": {"accepts": {"items": list}}, "refund": {"accepts": {"amount": float}}}

    class Component:
        def __init__(self, name, config, call):
            self.call, self.allowed = call, config

        def checkout(self, message):
            total = self.call("till.ring", {"items": message["items"]})
            return {"receipt": total, "allowed": self.allowed}

        def refund(self, message):
            return self.call("till.refund", message)

        def audit(self, message):  # declared in no METHODS table: not an endpoint
            return self.call("vault.peek", {})
"""

TILL = """
    class Component:
        def __init__(self, name, config, call):
            self.call, self.config, self.rung = call, config, 0

        def ring(self, message):
            total = 0.0
            for item in message["items"]:
                total += float(item["price"]) * int(item.get("qty", 1))
            self.rung += 1
            kept = self.call("vault.deposit", {"amount": total})
            return {"total": round(total, self.config["rounding"]), "n": self.rung, "vault": kept}

        def refund(self, message):
            if message["amount"] <= 0:
                raise ValueError("refund must be positive")
            return {"refunded": message["amount"], "currency": self.config["currency"]}
"""

VAULT = """
    import json  # used below, so the import is real

    class Component:
        def __init__(self, name, config, call):
            self.balance = 0.0

        def deposit(self, message):
            self.balance += message["amount"]
            return json.loads(json.dumps({"balance": round(self.balance, 2)}))
"""


def v2_blueprint(till_methods: dict[str, Any] | None = None) -> V2Blueprint:
    def hosted(name: str, module: str, configuration: Any, methods: dict, calls: dict, **more: Any) -> dict:
        config = {
            "module": module,
            "configuration": configuration,
            "methods": methods,
            "calls": calls,
            **more,
        }
        return {"name": name, "recipe": "Hosted", "config": config}

    return V2Blueprint.model_validate(
        {
            "schema_version": "2.0.0",
            "system": {"name": "tills", "description": "d", "version": "3"},
            "entry": "front",
            "components": [
                hosted(
                    "front",
                    "front.py",
                    ["checkout", "refund"],
                    {"checkout": {"items": "list"}, "refund": {"amount": "float"}},
                    {"till.ring": None, "till.refund": None, "vault.peek": None},
                    unreachable={"vault.peek": ["unknown_method", "'vault' has no method 'peek'"]},
                ),
                hosted(
                    "till",
                    "till.py",
                    {"currency": "EUR", "rounding": 2},
                    till_methods or {"ring": None, "refund": None},
                    {"vault.deposit": None},
                ),
                hosted("vault", "vault.py", {}, {"deposit": None}, {}),
            ],
            "bindings": [
                {"from": "front.to_till_ring", "to": "till.ring"},
                {"from": "front.to_till_refund", "to": "till.refund"},
                {"from": "till.to_vault_deposit", "to": "vault.deposit"},
            ],
        }
    )


@pytest.fixture
def system_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tills"
    (folder / "components").mkdir(parents=True)
    (folder / "blueprint.yaml").write_text(BLUEPRINT, encoding="utf-8")
    for name, text in (("front", FRONT), ("till", TILL), ("vault", VAULT)):
        (folder / "components" / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


REQUESTS = [
    ("checkout", {"items": [{"price": "1.10", "qty": 3}, {"price": 0.1}]}),
    ("checkout", {"items": []}),
    ("checkout", {"items": [{"price": "x"}]}),  # the code raises: ValueError in till.py
    ("checkout", {"items": "not a list"}),  # bad_message at the entry
    ("refund", {"amount": 2.5}),
    ("refund", {"amount": -1.0}),  # the code raises on purpose
    ("refund", {"amount": "12"}),  # bad_message
    ("checkout", {"items": [{"price": 2.675, "qty": 1}]}),
]


def answers_v1(folder: Path) -> list[str]:
    legacy = LegacySystem.load(folder, load_v1_blueprint(folder / "blueprint.yaml"))
    out = []
    for endpoint, message in REQUESTS:
        try:
            out.append(json.dumps(legacy.handle(endpoint, message), sort_keys=True))
        except RpcError as exc:
            out.append(json.dumps({"kind": exc.kind, "target": exc.target, "detail": exc.detail}))
    return out


def answers_v2(blueprint: V2Blueprint, code_dir: Path | None) -> list[str]:
    system = PortSystem(blueprint, code_dir)

    async def run() -> list[str]:
        out = []
        async with system.running():
            for endpoint, message in REQUESTS:
                try:
                    out.append(json.dumps(await system.handle(endpoint, message), sort_keys=True))
                except PortCallError as exc:
                    out.append(json.dumps({"kind": exc.kind, "target": exc.target, "detail": exc.detail}))
        return out

    return anyio.run(run)


def test_hosted_code_answers_and_fails_exactly_as_v1(system_dir: Path) -> None:
    old = answers_v1(system_dir)
    new = answers_v2(v2_blueprint(), system_dir / "components")
    assert new == old
    assert (
        '"total": 3.4' in old[0] and '"n": 1' in old[0] and '"balance": 3.4' in old[0]
    )  # state kept per call
    assert "ValueError: could not convert string to float: 'x' (till.py:" in old[2]
    assert "bad_message" in old[3] and "refund must be positive (till.py:" in old[5]


def test_a_module_that_does_not_import_answers_not_loaded_as_in_v1(system_dir: Path) -> None:
    till = system_dir / "components" / "till.py"
    till.write_text("from legacy_rpc.codec import encode_frame\n" + till.read_text(encoding="utf-8"))
    old, new = answers_v1(system_dir), answers_v2(v2_blueprint(), system_dir / "components")
    assert new == old
    assert "not_loaded" in old[0] and "No module named 'legacy_rpc'" in old[0]


def test_a_call_to_a_missing_method_or_an_undeclared_call_fails_with_a_reason(system_dir: Path) -> None:
    blueprint = v2_blueprint()
    system = PortSystem(blueprint, system_dir / "components")

    async def run() -> tuple[str, str]:
        async with system.running():
            front = system.recipes["front"].instance  # type: ignore[attr-defined]
            with pytest.raises(PortCallError) as missing:
                front.audit({})
            with pytest.raises(PortCallError) as undeclared:
                front.call("vault.deposit", {"amount": 1.0})
            return str(missing.value), str(undeclared.value)

    missing, undeclared = anyio.run(run)
    assert (
        missing == "unknown_method at vault.peek: 'vault' has no method 'peek'"
    )  # the legacy runtime's words
    assert "does not list under calls" in undeclared
