"""The run report, written from a real SQLite store filled by hand with real seed walkers."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from elm_core.errors import InvalidRequestError, NotFoundError
from elm_core.report._charts import ColourScale, Series, line_chart, nice_ticks
from elm_core.report._run_report import REPORT_GIF_SIZE, write_run_report
from elm_core.sodarace import Walker, seed_source
from elm_core.store import (
    BatchRecord,
    EliteRecord,
    IndividualRecord,
    MetricsRecord,
    MutationRecord,
    SQLiteStore,
)

RUN = "run-1"
DIMS, RANGES = (12, 12, 12), ((0.0, 20.0), (0.0, 20.0), (0.0, 40.0))
EVIL = "</pre><script>alert(1)</script>"
GIF_PREFIX = '<img src="data:image/gif;base64,'


def config(kind: str = "grid") -> str:
    archive = {"kind": kind, "dims": list(DIMS), "ranges": [list(r) for r in RANGES]}
    mutation = {"operator": "llm", "model": "tiny", "style": "diff"}
    evaluation = {"terrain": "flat", "sim": {"seconds": 2.0}}
    return json.dumps({"name": "demo <b>run</b>", "mutation": mutation, "evaluation": evaluation,
                       "archive": archive})  # fmt: skip


def cell(descriptors: tuple[float, ...]) -> int:
    bins = [
        min(n - 1, int((d - lo) / (hi - lo) * n))
        for d, (lo, hi), n in zip(descriptors, RANGES, DIMS, strict=True)
    ]
    return int(np.ravel_multi_index(bins, DIMS))


def individual(i: int, batch: int, parent: int | None, source: str, walker: Walker | None,
               fitness: float | None, status: str = "OK") -> IndividualRecord:  # fmt: skip
    descriptors = (2.0 + i, 3.0 + 2 * i, 5.0 + 3 * i) if fitness is not None else None
    return IndividualRecord(
        run_id=RUN, individual_id=i, batch=batch, parent_id=parent, source=source, status=status, message="",
        fitness=fitness, descriptors=descriptors, cell=cell(descriptors) if descriptors else None,
        walker_json=json.dumps(walker.to_dict()) if walker else None, timings_json="{}", created_at=100.0 + i,
    )  # fmt: skip


def elite(record: IndividualRecord) -> EliteRecord:
    assert record.cell is not None and record.fitness is not None and record.descriptors is not None
    return EliteRecord(run_id=RUN, cell=record.cell, individual_id=record.individual_id,
                       fitness=record.fitness, descriptors=record.descriptors)  # fmt: skip


def mutation(batch: int, parent: int, child: int | None, outcome: str, flags: tuple[bool, bool, bool],
             message: str = "Make the legs longer") -> MutationRecord:  # fmt: skip
    return MutationRecord(
        run_id=RUN, batch=batch, parent_id=parent, child_id=child, operator="llm", style="diff",
        message=message, raw_output=EVIL, mutation_outcome=outcome, applied=flags[0], ran=flags[1],
        inserted=flags[2], fitness_delta=None,
    )  # fmt: skip


def metrics(batch: int, evaluations: int, filled: int, best: float) -> MetricsRecord:
    return MetricsRecord(
        run_id=RUN, batch=batch, evaluations=evaluations, filled=filled, coverage=filled / 1728,
        qd_score=filled * 10.0 + best, max_fitness=best, applied_fraction=0.5 + 0.1 * batch,
        ran_fraction=0.4, inserted_fraction=0.2 * batch, elapsed_s=75.0 * (batch + 1),
        evaluations_per_s=2.5, created_at=200.0 + batch,
    )  # fmt: skip


def commit(store: SQLiteStore, batch: int, individuals: list[IndividualRecord],
           mutations: list[MutationRecord], stats: MetricsRecord) -> None:  # fmt: skip
    elites = tuple(elite(i) for i in individuals if i.fitness is not None)
    store.commit_batch(BatchRecord(run_id=RUN, batch=batch, individuals=tuple(individuals),
                                   mutations=tuple(mutations), elites=elites, metrics=stats,
                                   rng_state_json="{}"))  # fmt: skip


def fill(store: SQLiteStore, walkers: dict[str, Walker]) -> None:
    """Seeds 0-3; 4 = child of 0; 5 = a syntax error; 6 = child of 4 (the champion, an evil comment)."""
    names = list(walkers)
    seeds = [individual(k, 0, None, seed_source(n), walkers[n], 1.0 + k) for k, n in enumerate(names)]
    commit(store, 0, seeds, [], metrics(0, 4, 4, 4.0))
    square = seed_source(names[0])
    child = individual(4, 1, 0, square.replace("\n", "\n# longer legs\n", 1), walkers[names[0]], 7.5)
    broken = individual(5, 1, 1, "def make_walker(:\n", None, None, status="SYNTAX_ERROR")
    commit(store, 1, [child, broken], [
        mutation(1, 0, 4, "OK", (True, True, True)),
        mutation(1, 1, 5, "OK", (True, False, False)),
        mutation(1, 2, None, "DIFF_DID_NOT_APPLY", (False, False, False)),
    ], metrics(1, 6, 5, 7.5))  # fmt: skip
    champion = individual(6, 2, 4, child.source + f"# {EVIL}\n", walkers[names[0]], 12.25)
    asked = f"Wave the {EVIL} arms"
    commit(
        store, 2, [champion], [mutation(2, 4, 6, "OK", (True, True, True), asked)], metrics(2, 7, 6, 12.25)
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, seed_walkers: dict[str, Walker]) -> str:
    folder = tmp_path_factory.mktemp("report")
    with SQLiteStore(folder / "elm.sqlite") as store:
        store.create_run(
            run_id=RUN, name="demo <b>run</b>", config_json=config(), rng_seed=0, rng_state_json="{}"
        )
        fill(store, seed_walkers)
        path = write_run_report(store, RUN, folder / "out" / "report.html", top=4)
    assert path == folder / "out" / "report.html"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary file left behind
    return path.read_text(encoding="utf-8")


def section(text: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', text, re.S)
    assert match is not None, section_id
    return match.group(1)


def test_the_report_is_self_contained(report: str) -> None:
    assert report.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", report)
    assert "<script" not in report.lower() and "<link" not in report.lower()
    assert len(report) < 4_000_000


def test_the_header_names_the_run_and_its_numbers(report: str) -> None:
    header = report[report.index("<header>") : report.index("</header>")]
    assert "demo &lt;b&gt;run&lt;/b&gt;" in header and "<b>run" not in header
    for fact in ("CREATED", "llm", "tiny", "diff", "flat", "3 min 45 s", "0.3% (6 cells)", "+12.250"):
        assert fact in header, fact


def test_the_map_has_a_projection_a_slice_per_mass_bin_and_a_legend(report: str) -> None:
    archive = section(report, "map")
    projection = re.search(r'<figure id="map-projection">(.*?)</figure>', archive, re.S)
    assert projection is not None and projection.group(1).count("<rect") >= 12 * 12
    assert "#e6e6e6" in projection.group(1)  # empty cells are grey
    slices = archive[archive.index('id="map-slices"') :]
    assert slices.count("<svg") == 12 + 1  # twelve mass slices, then the legend
    assert "fitness colour scale" in archive and "+1.000" in archive and "+12.250" in archive


def test_the_curves_are_line_charts_with_ticks(report: str) -> None:
    progress = section(report, "curves")
    for figure_id in ("curve-qd", "curve-coverage", "curve-max-fitness", "curve-fractions"):
        figure = re.search(rf'<figure id="{figure_id}">(.*?)</figure>', progress, re.S)
        assert figure is not None, figure_id
        assert "<polyline" in figure.group(1) and figure.group(1).count("<text") > 6
    assert all(name in progress for name in ("applied", "ran", "inserted"))


def test_the_top_walkers_are_inline_gifs_with_their_programs(report: str) -> None:
    walkers = section(report, "walkers")
    assert walkers.count(GIF_PREFIX) == 4 and walkers.count("<details><summary>program") == 4
    data = walkers[walkers.index(GIF_PREFIX) + len(GIF_PREFIX) :].split('"', 1)[0]
    with Image.open(io.BytesIO(base64.b64decode(data))) as gif:
        assert gif.format == "GIF" and gif.size == REPORT_GIF_SIZE and 2 <= gif.n_frames <= 40
    assert walkers.index("individual 6") < walkers.index("individual 4")  # best first


def test_the_lineage_diffs_lead_from_the_seed_to_the_champion(report: str) -> None:
    lineage = section(report, "lineage")
    steps = re.findall(r'<details class="step"( open)?>', lineage)
    assert len(steps) == 3 and steps[-1] == " open" and not any(steps[:-1])
    assert lineage.count('<pre class="diff">') == 2
    assert '<span class="add">+# longer legs</span>' in lineage
    assert "fitness +12.250 (Δ +4.750)" in lineage and "asked for: Wave the" in lineage


def test_the_outcome_tables_count_mutations_and_evaluations(report: str) -> None:
    outcomes = section(report, "outcomes")
    assert re.search(r"<td>DIFF_DID_NOT_APPLY</td><td[^>]*>1</td>", outcomes)
    assert re.search(r"<td>OK</td><td[^>]*>3</td>", outcomes)
    assert re.search(r"<td>inserted</td><td[^>]*>2</td><td[^>]*>50.0%</td>", outcomes)
    assert re.search(r"<td>SYNTAX_ERROR</td><td[^>]*>1</td>", outcomes)


def test_program_text_and_model_output_are_escaped(report: str) -> None:
    assert EVIL not in report and "<script>" not in report
    escaped = "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert section(report, "walkers").count(escaped) == 1  # the champion's program
    assert section(report, "lineage").count(escaped) == 2  # the champion's diff and the message asked for


def test_a_run_with_no_batches_still_gets_a_report(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "elm.sqlite") as store:
        store.create_run(run_id=RUN, name="empty", config_json="not json", rng_seed=0, rng_state_json="{}")
        text = write_run_report(store, RUN, tmp_path / "report.html").read_text()
    for note in (
        "The archive is empty",
        "No metrics yet",
        "No elites yet",
        "No champion yet",
        "No mutations",
    ):
        assert note in text, note
    assert "<svg" not in text and GIF_PREFIX not in text


def test_a_cvt_archive_is_drawn_as_a_scatter(tmp_path: Path, seed_walkers: dict[str, Walker]) -> None:
    with SQLiteStore(tmp_path / "elm.sqlite") as store:
        store.create_run(run_id=RUN, name="cvt", config_json=config("cvt"), rng_seed=0, rng_state_json="{}")
        fill(store, seed_walkers)
        text = write_run_report(store, RUN, tmp_path / "report.html", top=0).read_text()
    archive = section(text, "map")
    assert 'id="map-scatter"' in archive and archive.count("<circle") == 6 and "map-projection" not in archive
    assert GIF_PREFIX not in text and '<details class="step" open>' in text  # top=0 still shows the lineage


def test_a_walker_that_cannot_be_animated_gets_a_note(tmp_path: Path) -> None:
    bad = individual(0, 0, None, "print('hi')", None, 3.0)
    with SQLiteStore(tmp_path / "elm.sqlite") as store:
        store.create_run(run_id=RUN, name="bad", config_json=config(), rng_seed=0, rng_state_json="{}")
        commit(store, 0, [bad], [], metrics(0, 1, 1, 3.0))
        text = write_run_report(store, RUN, tmp_path / "report.html", top=1).read_text()
    assert "No animation" in section(text, "walkers") and GIF_PREFIX not in text


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "elm.sqlite") as store:
        with pytest.raises(NotFoundError):
            write_run_report(store, "nope", tmp_path / "report.html")
        store.create_run(run_id=RUN, name="r", config_json="{}", rng_seed=0, rng_state_json="{}")
        with pytest.raises(InvalidRequestError, match="top"):
            write_run_report(store, RUN, tmp_path / "report.html", top=-1)
    assert not (tmp_path / "report.html").exists()


def test_nice_ticks_are_round_and_enclose_the_data() -> None:
    assert nice_ticks(0, 20) == [0, 5, 10, 15, 20]
    assert nice_ticks(0.013, 0.97) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(3.0, 3.0)
    assert ticks[0] < 3.0 < ticks[-1]


def test_large_tick_labels_stay_short() -> None:
    svg = line_chart([Series("qd", [0, 2e6], [0, 1.5e5], "#000")], label="l", x_label="x", y_label="y")
    assert ">150k<" in svg and ">2.0M<" in svg


def test_the_colour_scale_runs_from_dark_to_bright() -> None:
    scale = ColourScale(-1.0, 1.0)
    assert scale.colour(-5.0) == scale.colour(-1.0) == "#440154"
    assert scale.colour(1.0) == "#fde725" and ColourScale(2.0, 2.0).colour(2.0) == "#fde725"


def test_a_line_chart_leaves_a_gap_for_missing_values() -> None:
    svg = line_chart([Series("max <fitness>", [0, 1, 2, 3, 4], [1.0, 2.0, None, 3.0, 4.0], "#000")],
                     label="l", x_label="x", y_label="y")  # fmt: skip
    assert svg.count("<polyline") == 2 and "max <fitness>" not in svg
