"""The judge's power, measured (issue 16 point 7): a fast, seeded subset of ``bench/judge_power.py``.

Fixed seeds, so the counts are the same on every machine; the limits leave a
margin below what the bench measures (see the note for the full table), so a
change that costs the judge real power or lets regressions through fails here
and a change of a run or two does not.
"""

from __future__ import annotations

import pytest

from bench.judge_power import SCENARIOS, operating_characteristic
from engine.judge.policy import Policy, load_policy

RUNS = 30
N = 1000


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def rates(name: str, policy: Policy, paired: bool = True, n: int = N) -> dict[str, int]:
    cell = operating_characteristic(SCENARIOS[name], n, RUNS, paired, policy, seed=7)
    return {v: cell.counts[v] for v in ("GO", "NO_GO", "INCONCLUSIVE")}


def test_an_unchanged_system_is_go(policy: Policy) -> None:
    """Target >= 95 % of paired runs of 1,000 requests (30 of 30 here; the bench: 97-99 % of 100 at
    seed 1; it was 90 % while each primary was proven at 97.5 % one-sided)."""
    assert rates("unchanged", policy)["GO"] >= 28


def test_a_change_inside_the_margin_is_never_no_go(policy: Policy) -> None:
    assert rates("+8%", policy)["NO_GO"] == 0
    assert rates("+5%", policy)["GO"] >= 25  # 30 of 30 here (19 before); the bench: 92 % at 1,000


@pytest.mark.parametrize(
    "name", ["+15%", "+20%", "p99 tail", "endpoint +60%", "errors +2pt", "drift 0.9->1.2"]
)
def test_a_real_regression_is_never_go(policy: Policy, name: str) -> None:
    assert rates(name, policy)["GO"] == 0


def test_fifteen_percent_slower_is_no_go(policy: Policy) -> None:
    """Target >= 99 % NO_GO; at 1,000 paired requests the bench measures 95-100 %."""
    assert rates("+15%", policy)["NO_GO"] >= 27
    assert rates("+14%", policy, n=3000)["NO_GO"] >= 29


def own_rates(name: str, policy: Policy) -> dict[str, int]:
    """Runs as the gateway records them now: own time judged, the round trip a guard beside it."""
    cell = operating_characteristic(SCENARIOS[name], N, RUNS, True, policy, seed=7, own=True)
    return {v: cell.counts[v] for v in ("GO", "NO_GO", "INCONCLUSIVE")}


def test_on_own_time_an_unchanged_system_is_go_and_a_regression_never(policy: Policy) -> None:
    """30, 0 and 0 GO of 30 here; +20 % NO_GO 29 (the two processes' own spread, +-3.3 %, keeps a few
    near-margin runs INCONCLUSIVE); a version slower only in the round trip is never GO."""
    assert own_rates("unchanged", policy)["GO"] >= 28
    for name in ("+20%", "p99 tail", "round trip +30%"):
        assert own_rates(name, policy)["GO"] == 0, name
    assert own_rates("+20%", policy)["NO_GO"] >= 25
