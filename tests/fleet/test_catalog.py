"""Plan rules: categories from names, the seed's priorities, phases by position."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InputError
from engine.fleet.catalog import category_for, load_plan, phase_for_position, place_fleet, priority_for


@pytest.fixture(scope="module")
def plan():
    return load_plan()


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("todo_api_system", "todo"),
        ("data_processing_etl", "data_processing"),
        ("monitoring_alerts", "monitoring"),
        ("experimental_x", "experimental"),
        ("hello_world_api", "api"),
        ("billing_service", "api"),
        ("mystery", "other"),
    ],
)
def test_category_from_name(name: str, category: str) -> None:
    assert category_for(name) == category


def test_declared_category_wins() -> None:
    assert category_for("todo_like", "api") == "api"


@pytest.mark.parametrize(
    ("name", "category", "level"),
    [
        ("todo_api_system", "todo", "P0"),
        ("hello_world_api", "api", "P1"),
        ("simple_rest_api", "api", "P1"),
        ("data_processing_a", "data_processing", "P2"),
        ("monitoring_a", "monitoring", "P3"),
        ("experimental_a", "experimental", "P4"),
        ("todo_other", "todo", "P1"),
    ],
)
def test_seed_priorities(plan, name: str, category: str, level: str) -> None:
    assert priority_for(name, category, plan) == level


def test_seed_phase_bounds_for_52_systems(plan) -> None:
    assert [phase_for_position(i, 52, plan) for i in (1, 3, 4, 15, 16, 40, 41, 52)] == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]


def test_small_fleet_still_has_a_pilot(plan) -> None:
    assert phase_for_position(1, 5, plan) == 1
    assert phase_for_position(5, 5, plan) == 4


def test_place_fleet_orders_by_priority_then_simplicity(plan) -> None:
    placed = place_fleet(
        [
            ("experimental_a", "experimental", 2),
            ("big_api", "api", 9),
            ("todo_api_system", "todo", 4),
            ("hello_world_api", "api", 2),
        ],
        plan,
    )
    order = sorted(placed, key=lambda n: placed[n].migration_order)
    assert order == ["todo_api_system", "hello_world_api", "big_api", "experimental_a"]


def test_bad_plan_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "plan.toml"
    bad.write_text('start_date = "not a date"\npriority = []\ncategory_priority = {}\nphases = []\n')
    with pytest.raises(InputError) as info:
        load_plan(bad)
    assert str(bad) in str(info.value)
    assert "start_date" in info.value.location
    bad.write_text("start_date = [")
    with pytest.raises(InputError, match="valid TOML"):
        load_plan(bad)


def test_systems_the_seed_names_lead_their_priority(plan) -> None:
    placed = place_fleet(
        [
            ("aaa_api", "api", 2),
            ("simple_rest_api", "api", 3),
            ("hello_world_api", "api", 2),
            ("todo_api_system", "todo", 3),
        ],
        plan,
    )
    order = sorted(placed, key=lambda n: placed[n].migration_order)
    assert order == ["todo_api_system", "hello_world_api", "simple_rest_api", "aaa_api"]
