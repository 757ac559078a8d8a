"""The dashboard over HTTP on loopback, on a real GP run's store: pages, the JSON API, the event stream that
pushes each committed batch, walker animations, the lockdown headers and the errors."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import HOSTILE, commit_child, fetch

from elm_core.errors import NotFoundError
from elm_core.store import SQLiteStore
from services.dashboard import CSP, DashboardThread, StoreSource, create_app


def test_the_run_list_and_a_run_state_match_the_store(
    store_dashboard: tuple[str, str], gp_run: tuple[Path, str]
) -> None:
    url, run_id = store_dashboard
    with SQLiteStore(gp_run[0]) as store:
        run, elites, metrics = store.get_run(run_id), store.elites(run_id), store.metrics(run_id)
        operators = store.operator_stats(run_id)

    (listed,) = fetch(f"{url}/api/runs").json()
    assert (listed["run_id"], listed["status"], listed["evaluations"]) == (
        run_id,
        "FINISHED",
        run.evaluations,
    )
    assert listed["filled"] == len(elites) == metrics[-1].filled

    state = fetch(f"{url}/api/runs/{run_id}").json()
    assert sorted(e[1] for e in state["archive"]["elites"]) == sorted(e.individual_id for e in elites)
    assert state["archive"]["dims"] == [12, 12, 12]
    assert [p["batch"] for p in state["points"]] == [m.batch for m in metrics]
    assert state["last_batch"] == metrics[-1].batch
    assert {o["operator"]: o["mutations"] for o in state["operators"]} == {
        o.operator: o.mutations for o in operators
    }
    assert state["best"][0]["fitness"] == max(e.fitness for e in elites)
    assert state["run"]["controllable"] is False

    later = fetch(f"{url}/api/runs/{run_id}?after_batch={metrics[-2].batch}").json()
    assert [p["batch"] for p in later["points"]] == [metrics[-1].batch]


def test_pages_carry_the_lockdown_headers(store_dashboard: tuple[str, str]) -> None:
    url, run_id = store_dashboard
    for path in ("/", f"/runs/{run_id}", f"/runs/{run_id}/individuals/0", "/api/runs", "/static/dashboard.js",
                 "/runs/nope", "/api/runs/nope"):  # fmt: skip
        reply = fetch(url + path)
        assert reply.headers["content-security-policy"] == CSP, path
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP


def test_an_elite_page_shows_its_program_lineage_and_animation(
    store_dashboard: tuple[str, str], gp_run: tuple[Path, str]
) -> None:
    url, run_id = store_dashboard
    with SQLiteStore(gp_run[0]) as store:
        best = store.top_elites(run_id, 1)[0]
        lineage = store.lineage(run_id, best.individual_id)
    page = fetch(f"{url}/runs/{run_id}/individuals/{best.individual_id}").text
    assert "def make_walker" in page
    assert f"{len(lineage) - 1} mutations from the seed to this individual" in page
    for step in lineage:
        assert f'/individuals/{step.individual_id}"' in page
    gif = fetch(f"{url}/api/runs/{run_id}/individuals/{best.individual_id}/walker.gif")
    assert gif.status == 200 and gif.headers["content-type"] == "image/gif" and gif.body[:6] == b"GIF89a"


def test_a_new_batch_is_pushed_to_an_open_event_stream(run_copy: tuple[Path, str]) -> None:
    store_file, run_id = run_copy
    source = StoreSource(store_file)
    with (
        DashboardThread(create_app(source, source_name="copy", poll_s=0.05)) as server,
        SQLiteStore(store_file) as store,
    ):
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        conn.request("GET", f"/api/runs/{run_id}/events")
        stream = conn.getresponse()
        assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")

        first = _next_event(stream)
        assert first["reset"] is True and first["last_batch"] == store.get_run(run_id).batches - 1

        child = commit_child(store, run_id, source="def make_walker():\n    pass\n", raw_output="ok")
        second = _next_event(stream)
        assert second["reset"] is False
        assert [p["batch"] for p in second["points"]] == [child.batch]
        assert child.individual_id in [e[1] for e in second["archive"]["elites"]]
        assert second["run"]["filled"] == first["run"]["filled"] + 1
        conn.close()
    source.close()


def _next_event(stream: http.client.HTTPResponse) -> dict:
    lines = []
    while True:
        line = stream.readline().decode()
        if line == "\n" and lines:
            break
        if line.startswith("data: "):
            lines.append(line[len("data: ") :])
    return json.loads("".join(lines))


def test_untrusted_text_is_escaped_in_the_html(run_copy: tuple[Path, str]) -> None:
    store_file, run_id = run_copy
    with SQLiteStore(store_file) as store:
        child = commit_child(
            store, run_id, source=f"# {HOSTILE}\ndef make_walker():\n    pass\n", raw_output=HOSTILE
        )
    source = StoreSource(store_file)
    with DashboardThread(create_app(source, source_name=HOSTILE)) as server:
        paths = ("/", f"/runs/{run_id}", f"/runs/{run_id}/individuals/{child.individual_id}")
        pages = [fetch(server.url + path).text for path in paths]
    source.close()
    for page in pages:
        assert "<script>window" not in page and "<img src=x" not in page
    escaped = "&lt;/script&gt;&lt;script&gt;window.__pwned = 1&lt;/script&gt;"
    assert pages[2].count(escaped) == 4  # the program, its diff in the lineage, the request, the model output


def test_errors_are_clear_and_typed(store_dashboard: tuple[str, str], tmp_path: Path) -> None:
    url, run_id = store_dashboard
    missing = fetch(f"{url}/api/runs/nope")
    assert missing.status == 404 and "nope" in missing.json()["error"]
    assert fetch(f"{url}/runs/{run_id}/individuals/99999").status == 404
    assert "not found" in fetch(f"{url}/runs/{run_id}/individuals/99999").text
    bad = fetch(f"{url}/api/runs/{run_id}?after_batch=soon")
    assert bad.status == 400 and "after_batch" in bad.json()["error"]
    assert fetch(f"{url}/api/runs/{run_id}/events?x=1".replace(run_id, "nope")).status == 404

    no_header = fetch(f"{url}/api/runs/{run_id}/pause", method="POST")
    assert no_header.status == 403 and "x-elm-dashboard" in no_header.json()["error"]
    on_store = fetch(f"{url}/api/runs/{run_id}/pause", method="POST", headers={"X-ELM-Dashboard": "1"})
    assert on_store.status == 400 and "coordinator" in on_store.json()["error"]

    with pytest.raises(NotFoundError, match="no run store"):
        StoreSource(tmp_path / "nothing-here")


def test_only_this_machine_or_allowed_names_may_be_the_host(store_dashboard: tuple[str, str]) -> None:
    url, _ = store_dashboard
    assert fetch(f"{url}/healthz").text == "ok"
    assert fetch(f"{url}/healthz", headers={"Host": "attacker.example"}).status == 400  # DNS rebinding
    assert fetch(f"{url}/healthz", headers={"Host": "localhost"}).status == 200


def test_elm_run_serves_its_dashboard_while_it_runs(tmp_path: Path) -> None:
    elm = Path(sys.executable).parent / "elm"
    command = [str(elm), "run", "--operator", "gp", "--budget", "400", "--batch-size", "4", "--sim-seconds",
               "4", "--out", str(tmp_path / "run"), "--dashboard", "--dashboard-port", "0"]  # fmt: skip
    env = os.environ | {"COLUMNS": "300"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as run:
        assert run.stdout is not None
        line = next(line for line in run.stdout if line.startswith("dashboard: "))
        page = line.split()[1]
        assert page.startswith("http://127.0.0.1:") and page.endswith("/runs/run")
        state = fetch(page.replace("/runs/", "/api/runs/")).json()
        assert state["run"]["run_id"] == "run" and state["run"]["operator"] == "gp"
        assert run.wait(timeout=120) == 0
