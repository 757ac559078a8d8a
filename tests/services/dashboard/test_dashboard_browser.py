"""The dashboard in a real headless Chromium (the system's, driven by Playwright): a live embedded GP run
gains cells on the open page without a reload, an elite opens with its program and lineage, and program
text or model output carrying script never runs."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HOSTILE, commit_child
from playwright.sync_api import Browser, Page, sync_playwright

from elm_core.qd import LoopConfig
from elm_core.run import STORE_FILE, create_run
from elm_core.sodarace import SimConfig
from elm_core.spec import EmbeddedSpec, EvaluationSpec, MutationSpec, RunSpec
from elm_core.store import SQLiteStore
from services.dashboard import DashboardThread, StoreSource, create_app

CHROMIUM = os.environ.get("ELM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium as root needs --no-sandbox; the rest keep it off this machine's closed network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]  # fmt: skip
TIMEOUT_MS = 30_000


def wait_until(page: Page, expression: str, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    """Polls a JS expression from outside the page (the page's CSP forbids Playwright's in-page eval)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("ELM_REQUIRE_BROWSER") == "1":
            pytest.fail("no Chromium found (deploy/scripts/install-browser.sh installs Debian's)")
        pytest.skip("no Chromium here: deploy/scripts/install-browser.sh installs it")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


def test_a_live_run_gains_cells_without_a_reload_and_an_elite_opens(tmp_path: Path, page: Page) -> None:
    run_dir = tmp_path / "run"
    spec = RunSpec(mutation=MutationSpec(operator="gp"), seeds=("square", "radial"),
                   loop=LoopConfig(batch_size=4, pipeline_depth=1, max_evaluations=160),
                   evaluation=EvaluationSpec(sim=SimConfig(seconds=4.0)),
                   embedded=EmbeddedSpec(workers=2))  # fmt: skip
    create_run(run_dir, spec)
    source = StoreSource(run_dir)
    run_id = source.runs()[0].run_id
    with DashboardThread(create_app(source, source_name="live run", poll_s=0.1)) as server:
        page.goto(f"{server.url}/runs/{run_id}")
        wait_until(page, "document.getElementById('live').textContent === 'live'")
        page.evaluate("window.__sameDocument = true")
        assert page.get_attribute("#map-view", "data-filled") == "0"

        # the run in a process of its own, as `elm run` does it, writing to the store the page reads
        code = f"import pathlib, elm_core.run as r; r.execute_run(pathlib.Path({str(run_dir)!r}))"
        run = subprocess.Popen([sys.executable, "-c", code])
        wait_until(page, "Number(document.getElementById('map-view').dataset.filled) >= 1")
        first = int(page.get_attribute("#map-view", "data-filled"))
        wait_until(page, f"Number(document.getElementById('map-view').dataset.filled) > {first}")
        assert run.wait(timeout=120) == 0
        wait_until(page, "document.getElementById('run-status').textContent === 'FINISHED'")
        assert page.evaluate("window.__sameDocument") is True  # no reload

        with SQLiteStore(run_dir / STORE_FILE) as store:
            elites = store.elites(run_id)
            best = store.top_elites(run_id, 1)[0]
            lineage = store.lineage(run_id, best.individual_id)
        assert page.locator("#map-view a.elite").count() >= 2
        shown = page.get_attribute("#map-view", "data-filled")
        assert shown == str(len(elites))
        assert page.locator("#walker-cards img").count() == min(4, len(elites))

        page.select_option("#mass-slice", "best")
        page.click(f'#map-view a.elite[data-individual="{best.individual_id}"]')
        page.wait_for_url(f"**/individuals/{best.individual_id}")
        assert "def make_walker" in page.text_content("#program")
        steps = page.locator("#lineage details.step")
        assert steps.count() == len(lineage)
        if len(lineage) > 1:
            steps.nth(1).locator("summary").click()
            assert steps.nth(1).locator("pre.diff span.add, pre.diff span.del").count() >= 1
        walker = page.locator("img.walker")
        walker.wait_for()
        assert page.evaluate("document.querySelector('img.walker').naturalWidth") > 0
    source.close()


def test_script_in_programs_model_output_and_names_never_runs(run_copy: tuple[Path, str], page: Page) -> None:
    store_file, run_id = run_copy
    with SQLiteStore(store_file) as store:
        child = commit_child(
            store, run_id, source=f"# {HOSTILE}\ndef make_walker():\n    pass\n", raw_output=HOSTILE
        )
    with sqlite3.connect(store_file) as db:  # a hostile run name too (names come from whoever made the run)
        db.execute("UPDATE runs SET name = ? WHERE run_id = ?", (HOSTILE, run_id))
    source = StoreSource(store_file)
    with DashboardThread(create_app(source, source_name=HOSTILE, poll_s=0.1)) as server:
        page.goto(server.url)
        page.wait_for_selector(f'#runs tr[data-run="{run_id}"]')
        assert HOSTILE in page.text_content("#runs")  # shown, as text

        page.goto(f"{server.url}/runs/{run_id}")
        wait_until(page, "document.getElementById('live').textContent === 'live'")
        assert page.text_content("#run-name") == HOSTILE

        page.goto(f"{server.url}/runs/{run_id}/individuals/{child.individual_id}")
        assert HOSTILE in page.text_content("#program")
        assert page.text_content("#raw-output").strip() == HOSTILE
        for path in ("/", f"/runs/{run_id}", f"/runs/{run_id}/individuals/{child.individual_id}"):
            page.goto(server.url + path)
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned") is None, path
            assert page.locator("img[src=x]").count() == 0
    source.close()
