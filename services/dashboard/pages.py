"""The dashboard's HTML. Every string that came from a run (names, programs, model output) is escaped here;
the live parts are filled in by /static/dashboard.js, which writes text only."""

from __future__ import annotations

import html
from urllib.parse import quote

from elm_core.report import REPORT_GIF_SIZE, code_html, lineage_html
from elm_core.store import IndividualRecord, MutationRecord, RunRecord

_DESCRIPTORS = ("height", "width", "mass")


def _page(title: str, body: str, *, page: str, run_id: str = "") -> str:
    run = f' data-run="{html.escape(run_id)}"' if run_id else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="stylesheet" href="/static/dashboard.css">'
        f'<script src="/static/dashboard.js" defer></script></head>'
        f'<body data-page="{page}"{run}><main>'
        f'<nav class="top"><a href="/">all runs</a></nav>{body}</main></body></html>\n'
    )


def run_url(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def individual_url(run_id: str, individual_id: int) -> str:
    return f"{run_url(run_id)}/individuals/{individual_id}"


def index_page(source_name: str) -> str:
    body = (
        f'<header><h1>ELM runs</h1><p class="sub">from {html.escape(source_name)} · '
        '<span id="live">connecting…</span></p></header>'
        '<table class="runs" id="runs"><thead><tr><th>run</th><th>status</th><th>operator</th>'
        '<th class="num">evaluations</th><th class="num">filled cells</th><th class="num">QD score</th>'
        '<th class="num">max fitness</th><th>updated</th></tr></thead><tbody></tbody></table>'
        '<p class="note" id="no-runs" hidden>No runs yet.</p>'
    )
    return _page("ELM runs", body, page="index")


def run_page(run: RunRecord) -> str:
    body = (
        f'<header><h1 id="run-name">{html.escape(run.name)}</h1>'
        f'<p class="sub">run <code>{html.escape(run.run_id)}</code> · <b id="run-status">'
        f'{html.escape(run.status.value)}</b> · <span id="live">connecting…</span></p>'
        '<div id="controls" hidden><button type="button" data-action="pause">Pause</button>'
        '<button type="button" data-action="resume">Resume</button>'
        '<button type="button" data-action="stop">Stop</button><span id="control-result"></span></div>'
        '<dl class="facts" id="facts"></dl></header>'
        '<section id="map"><h2>Archive</h2><p><label>Mass: <select id="mass-slice">'
        '<option value="best">best over all mass bins</option></select></label> '
        '<span id="map-summary"></span></p><div id="map-view"></div><div id="map-legend"></div>'
        '<p class="note">Click a filled cell to open its elite.</p></section>'
        '<section id="curves"><h2>Progress</h2><div class="charts" id="charts"></div></section>'
        '<section id="operators"><h2>Operators</h2><table class="counts" id="operator-table"><thead><tr>'
        '<th>operator</th><th class="num">mutations</th><th class="num">applied</th><th class="num">ran</th>'
        '<th class="num">inserted</th><th class="num">duplicate</th><th class="num">tokens / call</th>'
        "</tr></thead><tbody></tbody></table></section>"
        '<section id="walkers"><h2>Best walkers</h2><div class="cards" id="walker-cards"></div></section>'
    )
    return _page(f"ELM run {run.name}", body, page="run", run_id=run.run_id)


def individual_page(
    run: RunRecord,
    individual: IndividualRecord,
    mutation: MutationRecord | None,
    lineage: list[IndividualRecord],
) -> str:
    i = individual
    title = f"individual {i.individual_id}"
    facts = [("status", i.status), ("fitness", _number(i.fitness)), ("batch", str(i.batch)),
             ("cell", "—" if i.cell is None else str(i.cell))]  # fmt: skip
    facts += [(name, f"{value:.3f}") for name, value in zip(_DESCRIPTORS, i.descriptors or (), strict=False)]
    if i.message:
        facts.append(("message", i.message))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    parent = ""
    if i.parent_id is not None:
        link = f'<a href="{individual_url(run.run_id, i.parent_id)}">individual {i.parent_id}</a>'
        parent = f"<p>child of {link}</p>"
    body = (
        f'<header><h1>{html.escape(title)}</h1><p class="sub">run <a href="{run_url(run.run_id)}">'
        f"<code>{html.escape(run.run_id)}</code></a></p></header>"
        f'<div class="elite"><div>{_animation(run.run_id, i)}</div>'
        f'<table class="facts-table" id="individual-facts">{rows}</table></div>{parent}'
        f'<section id="program"><h2>Program</h2>{code_html(i.source)}</section>'
        f"{_mutation_section(mutation)}{_lineage_section(run.run_id, lineage)}"
    )
    return _page(f"{title} · {run.name}", body, page="individual", run_id=run.run_id)


def error_page(status: int, message: str) -> str:
    body = f'<header><h1>{status}</h1><p class="note" id="error">{html.escape(message)}</p></header>'
    return _page(f"{status}", body, page="error")


def _animation(run_id: str, i: IndividualRecord) -> str:
    if i.status != "OK" or not i.walker_json:
        return '<p class="note">No animation: the program made no walker that could be simulated.</p>'
    w, h = REPORT_GIF_SIZE
    src = f"{individual_url(run_id, i.individual_id).replace('/runs/', '/api/runs/', 1)}/walker.gif"
    alt = f"individual {i.individual_id} walking"
    return f'<img class="walker" src="{src}" width="{w}" height="{h}" alt="{alt}">'


def _mutation_section(m: MutationRecord | None) -> str:
    if m is None:
        return '<section id="mutation"><h2>Origin</h2><p>A seed: no mutation made it.</p></section>'
    facts = [("operator", m.operator), ("style", m.style or "—"), ("outcome", m.mutation_outcome),
             ("asked for", m.message or "—"), ("tokens written", str(m.generated_tokens))]  # fmt: skip
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    output = code_html(m.raw_output) if m.raw_output else '<p class="note">No model output (GP).</p>'
    return (
        f'<section id="mutation"><h2>The mutation that made it</h2><table class="facts-table">{rows}</table>'
        f'<h3>The model\'s raw output</h3><div id="raw-output">{output}</div></section>'
    )


def _lineage_section(run_id: str, lineage: list[IndividualRecord]) -> str:
    def link(_: int, step: IndividualRecord) -> str:
        return f'<a href="{individual_url(run_id, step.individual_id)}">individual {step.individual_id}</a>'

    intro = f"<p>{len(lineage) - 1} mutations from the seed to this individual.</p>"
    return f'<section id="lineage"><h2>Lineage</h2>{intro}{lineage_html(lineage, link)}</section>'


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"
