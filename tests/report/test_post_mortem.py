"""Post-mortem reports: the evidence they collect per scope, and the three formats they render to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine import services
from engine.cli import main
from engine.errors import InputError, NotFoundError
from engine.report import parse_scope
from engine.store import connect
from engine.store.events import append_events
from engine.workspace import Workspace
from tests.histories import at, moves, write_history

SCRIPT = "<script>alert('pwned')</script>"


@pytest.fixture
def history(sample_ws: Workspace) -> Workspace:
    """The KPI history, plus a rollback whose reason is hostile text and its failure document."""
    write_history(sample_ws)
    rollback = moves("search_api", [(at(1, 14), "green_deployed", "dan"), (at(1, 15), "rolled_back", "dan")])
    rollback[-1]["reason"] = f"p95 doubled {SCRIPT} | see #ops"
    with connect(sample_ws.db_path) as con:
        append_events(con, rollback)
    sample_ws.failures_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "system": "hello_world_api",
        "timestamp": at(1, 10, 20).isoformat(),
        "reason": "error rate 9 %",
        "actor": "trigger:error_rate",
        "trigger": {"name": "error_rate"},
    }
    (sample_ws.failures_dir / "hello_world_api_20261126_102000.json").write_text(json.dumps(doc))
    (sample_ws.failures_dir / "todo_api_system_20261126_000000.json").write_text("{not json")
    return sample_ws


def test_scope_is_parsed_or_refused() -> None:
    assert str(parse_scope("migration")) == "migration"
    assert parse_scope("phase:2").phase == 2
    assert parse_scope("system:todo_api_system").system == "todo_api_system"
    for bad in ("", "phase:two", "system:", "everything", "migration:1"):
        with pytest.raises(InputError, match="--scope"):
            parse_scope(bad)


def test_migration_scope_agrees_with_the_kpis(history: Workspace) -> None:
    post = services.post_mortem(history, "migration", generated_by="lead", as_of=at(2, 0))
    kpis = services.kpis(history, at(2, 0))
    assert post.metrics.model_dump() == kpis.model_dump()
    assert post.systems.height == 52 and len(post.phases) == 4 and post.forecast is not None
    decided = {(r["system"], r["to_state"]) for r in post.decisions.iter_rows(named=True)}
    assert ("todo_api_system", "promoted") in decided and ("hello_world_api", "rolled_back") in decided
    assert ("todo_api_system", "parallel_run") not in decided  # in-between steps stay in the audit log
    # each decision carries the newest verdict before it, never a later one
    evidence = dict(
        post.decisions.filter(post.decisions["to_state"] != "green_deployed")
        .select("system", "evidence")
        .iter_rows()
    )
    assert evidence["todo_api_system"].startswith("GO (throughput +25.0 %")
    assert evidence["hello_world_api"].startswith("NO_GO")
    assert evidence["search_api"] == "no verdict yet"
    assert set(post.rollbacks["system"]) == {"hello_world_api", "simple_rest_api", "search_api"}
    # both failure documents are listed; the broken one says so rather than failing the report
    assert [f.system for f in post.failures] == ["todo_api_system", "hello_world_api"]
    assert post.failures[0].reason.startswith("unreadable")
    assert post.failures[1].trigger == "error_rate"
    # the register's live evidence: the latency NO_GO of hello_world_api is a performance regression
    risks = {r.id: r for r in post.risks}
    assert "hello_world_api" in risks["performance_regression"].systems
    assert all(r.materialised and r.evidence for r in post.risks)


def test_narrower_scopes_only_cover_their_systems(history: Workspace) -> None:
    one = services.post_mortem(history, "system:hello_world_api", as_of=at(2, 0))
    assert one.systems["name"].to_list() == ["hello_world_api"]
    assert one.metrics.systems_total == 1 and one.metrics.rollback_count == 1
    assert set(one.decisions["system"]) == {"hello_world_api"}
    assert [f.file for f in one.failures] == ["hello_world_api_20261126_102000.json"]
    assert one.phases == [] and one.forecast is None
    assert all(set(r.systems) <= {"hello_world_api"} for r in one.risks)
    todo = services.post_mortem(history, "system:todo_api_system", as_of=at(2, 0))
    assert "performance_regression" not in {r.id for r in todo.risks}  # its verdict was GO
    phase = services.post_mortem(history, "phase:1", as_of=at(2, 0))
    assert [p.number for p in phase.phases] == [1]
    assert set(phase.systems["phase"]) == {1} and phase.metrics.systems_total == phase.systems.height
    with pytest.raises(NotFoundError, match="no_such_system"):
        services.post_mortem(history, "system:no_such_system")
    with pytest.raises(NotFoundError, match="phase:9"):
        services.post_mortem(history, "phase:9")


def test_markdown_and_html_escape_what_people_typed(history: Workspace) -> None:
    md = services.post_mortem_file(history, "migration", "md", as_of=at(2, 0))
    assert md.file_name.endswith(".md") and md.mime == "text/markdown"
    text = md.data.decode()
    assert "# Post-mortem: the whole migration" in text and "## Decisions and their evidence" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert (
        "doubled &lt;script&gt;alert\\('pwned'\\)&lt;/script&gt; \\| see \\#ops" in text
    )  # a pipe cannot split the row
    # burn-up, score parts, verdicts, and each judged system's criteria at a glance (as on Go / No-Go)
    assert text.count("data:image/png;base64,") == 5
    assert text.count(": criteria at a glance") == 2
    page = services.post_mortem_file(history, "migration", "html", as_of=at(2, 0)).data.decode()
    assert "<script" not in page.lower()
    assert "p95 doubled &lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; | see #ops" in page
    assert "default-src 'none'" in page  # inert even if something slipped through
    assert page.count('src="data:image/png;base64,') == 5
    assert "http://" not in page and "https://" not in page  # self-contained


def test_pdf_has_the_text_and_the_charts(history: Workspace) -> None:
    report = services.post_mortem_file(history, "system:todo_api_system", "pdf", as_of=at(2, 0))
    assert report.file_name == "post-mortem_system-todo_api_system_" + at(2, 0).strftime("%Y%m%d") + ".pdf"
    assert report.data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Subtype\s*/Image", report.data)) >= 2
    assert b"/Title (Post-mortem: system todo_api_system)" in report.data
    assert len(re.findall(rb"/Type\s*/Page\b", report.data)) >= 2  # tables and charts need more than a page


def test_report_command_writes_each_format(history: Workspace, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for fmt in ("md", "html", "pdf"):
        out = tmp_path / f"report.{fmt}"
        code = main(
            [
                "--workspace",
                str(history.root),
                "report",
                "--scope",
                "phase:1",
                "--format",
                fmt,
                "--out",
                str(out),
            ]
        )
        assert code == 0 and out.stat().st_size > 1000
    assert main(["--workspace", str(history.root), "--json", "report", "--scope", "phase:x"]) == 2
    assert "--scope" in json.loads(capsys.readouterr().out.splitlines()[-1])["error"]["message"]


def test_a_pdf_table_with_a_cell_longer_than_a_page_renders_cut_and_the_markdown_keeps_it() -> None:
    """fpdf2 refuses a table row taller than a page: a promoted system's long reasons did that."""
    from engine.report.document import Document, Section, Table
    from engine.report.markdown import render_markdown
    from engine.report.pdf import render_pdf

    long = "evidence reviewed by a second lead " * 200
    table = Table(header=[f"c{i}" for i in range(8)], rows=[[long] * 8, ["short"] * 8])
    doc = Document(title="t", subtitle="s", sections=[Section(heading="Decisions", blocks=[table])])
    assert render_pdf(doc).startswith(b"%PDF")
    assert long.strip() in render_markdown(doc)
