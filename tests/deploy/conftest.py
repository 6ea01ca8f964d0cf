"""Fixtures for tests that start real processes: a workspace whose systems are ready to deploy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from engine import services
from engine.workspace import Workspace


@pytest.fixture
def ready_ws(sample_ws: Workspace) -> Iterator[Callable[[str], Workspace]]:
    """``ready(name)`` converts, validates and checks off ``name``; every process is stopped afterwards."""

    def ready(name: str) -> Workspace:
        services.convert_systems(sample_ws, [name], actor="tester")
        services.validate_systems_v2(sample_ws, [name], actor="tester")
        result = services.checklist(sample_ws, name, actor="lead", ack="team_notified", note="told the team")
        assert result.ready_to_migrate, result.missing()
        return sample_ws

    yield ready
    services.down(sample_ws, actor="tester")
