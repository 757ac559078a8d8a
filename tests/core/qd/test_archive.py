"""The archives: one contract suite for every kind, then what is particular to the grid and to CVT,
the config's validation, and parent selection."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elm_core.errors import ConfigError, StateError
from elm_core.qd import _cvt
from elm_core.qd._archive import ArchiveBase, Elite, GridArchive
from elm_core.qd._config import DEFAULT_RANGES, ArchiveConfig, ArchiveKind
from elm_core.qd._cvt import CVTArchive, nearest, unit_centroids
from elm_core.qd._selectors import TournamentSelector, UniformSelector
from elm_core.sodarace import SimConfig, Walker, describe

RANGES = ((0.0, 10.0), (-5.0, 5.0))
CONFIGS = {
    "grid": ArchiveConfig(kind="grid", dims=(4, 5), ranges=RANGES),
    "cvt": ArchiveConfig(
        kind="cvt", ranges=RANGES, cvt_cells=20, cvt_samples=2_000, cvt_iterations=5, seed=3
    ),
}


def make(kind: str) -> ArchiveBase:
    config = CONFIGS[kind]
    return GridArchive(config) if config.kind == ArchiveKind.GRID else CVTArchive(config)


@pytest.fixture(params=sorted(CONFIGS))
def archive(request: pytest.FixtureRequest) -> ArchiveBase:
    return make(request.param)


def distinct_cells(archive: ArchiveBase, count: int) -> list[tuple[int, tuple[float, float]]]:
    """`count` (cell, descriptors) pairs in different cells, found on a fixed lattice of points."""
    found: dict[int, tuple[float, float]] = {}
    for x in np.linspace(0.5, 9.5, 10):
        for y in np.linspace(-4.5, 4.5, 10):
            found.setdefault(archive.cell_of((x, y)), (float(x), float(y)))
    assert len(found) >= count
    return sorted(found.items())[:count]


# --- the contract every archive meets ---------------------------------------------------------------------


def test_a_new_archive_is_empty(archive: ArchiveBase) -> None:
    assert len(archive) == 0
    assert archive.cells == archive.config.cells
    assert archive.elites() == []
    assert np.isnan(archive.fitness_grid()).all()
    assert archive.get(0) is None


def test_cell_of_gives_a_valid_cell_and_clips_out_of_range_values(archive: ArchiveBase) -> None:
    for point in [(0.0, -5.0), (10.0, 5.0), (5.0, 0.0), (-100.0, 100.0), (1e300, -1e300)]:
        cell = archive.cell_of(point)
        assert isinstance(cell, int)
        assert 0 <= cell < archive.cells
        clipped = np.clip(point, [0.0, -5.0], [10.0, 5.0])
        assert cell == archive.cell_of(clipped)


@pytest.mark.parametrize("bad", [(math.nan, 0.0), (0.0, math.inf), (-math.inf, 1.0)])
def test_non_finite_descriptors_raise(archive: ArchiveBase, bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="finite"):
        archive.cell_of(bad)
    with pytest.raises(ValueError, match="finite"):
        archive.try_insert(1, 1.0, bad)
    assert len(archive) == 0


@pytest.mark.parametrize("bad", [(1.0,), (1.0, 2.0, 3.0), ((1.0, 2.0),)])
def test_the_wrong_number_of_descriptors_raises(archive: ArchiveBase, bad: tuple) -> None:
    with pytest.raises(ValueError, match="descriptors"):
        archive.cell_of(bad)


def test_insertion_needs_an_empty_cell_or_strictly_greater_fitness(archive: ArchiveBase) -> None:
    first = archive.try_insert(1, 2.0, (3.0, 1.0))
    assert (first.inserted, first.previous, first.improvement) == (True, None, None)
    assert first.cell == archive.cell_of((3.0, 1.0))
    original = Elite(first.cell, 2.0, (3.0, 1.0), 1)
    assert archive.get(first.cell) == original

    for fitness in (2.0, 1.5, -7.0):  # equal or worse: the first comer stays
        result = archive.try_insert(2, fitness, (3.0, 1.0))
        assert (result.inserted, result.cell, result.previous, result.improvement) == (
            False,
            first.cell,
            original,
            None,
        )
    assert archive.get(first.cell) == original

    better = archive.try_insert(3, 2.5, (3.01, 1.0))
    assert (better.inserted, better.previous, better.improvement) == (True, original, 0.5)
    assert archive.get(first.cell) == Elite(first.cell, 2.5, (3.01, 1.0), 3)
    assert len(archive) == 1


@pytest.mark.parametrize("fitness", [math.nan, math.inf, -math.inf])
def test_non_finite_fitness_never_inserts(archive: ArchiveBase, fitness: float) -> None:
    result = archive.try_insert(1, fitness, (3.0, 1.0))
    assert not result.inserted
    assert len(archive) == 0
    archive.try_insert(2, 1.0, (3.0, 1.0))
    assert not archive.try_insert(3, fitness, (3.0, 1.0)).inserted
    assert archive.get(result.cell) == Elite(result.cell, 1.0, (3.0, 1.0), 2)


def test_elites_are_ordered_by_cell_and_keep_raw_descriptors(archive: ArchiveBase) -> None:
    pairs = distinct_cells(archive, 5)
    for k, (_, point) in enumerate(reversed(pairs)):
        archive.try_insert(k, float(k), point)
    archive.try_insert(99, 1.0, (50.0, 50.0))  # out of range: clipped for the cell, stored as given
    elites = archive.elites()
    assert [e.cell for e in elites] == sorted(e.cell for e in elites)
    assert len(archive) == len(elites) == len(set(archive.filled_cells().tolist()))
    assert archive.fitnesses().tolist() == [e.fitness for e in elites]
    corner = archive.get(archive.cell_of((50.0, 50.0)))
    assert corner is not None and corner.descriptors == (50.0, 50.0)


def test_restore_rebuilds_the_same_archive(archive: ArchiveBase) -> None:
    for k, (_, point) in enumerate(distinct_cells(archive, 6)):
        archive.try_insert(100 + k, k - 2.5, point)
    rebuilt = make("grid" if isinstance(archive, GridArchive) else "cvt")
    rebuilt.try_insert(7, 50.0, (9.9, 4.9))  # restore replaces whatever was there
    rebuilt.restore(archive.elites())
    assert rebuilt.elites() == archive.elites()
    assert len(rebuilt) == len(archive)
    np.testing.assert_array_equal(rebuilt.fitness_grid(), archive.fitness_grid())
    first = archive.elites()[0]
    assert rebuilt.try_insert(1, first.fitness, first.descriptors).inserted is False


@pytest.mark.parametrize(
    "bad",
    [
        Elite(-1, 1.0, (1.0, 1.0), 1),
        Elite(10**6, 1.0, (1.0, 1.0), 1),
        Elite(0, math.nan, (1.0, 1.0), 1),
        Elite(0, 1.0, (1.0,), 1),
        Elite(0, 1.0, (1.0, math.inf), 1),
        Elite(2, 1.0, (1.0, 1.0), 1),  # a second elite for cell 2
    ],
)
def test_restore_rejects_elites_that_do_not_fit_and_changes_nothing(archive: ArchiveBase, bad: Elite) -> None:
    archive.try_insert(5, 3.0, (1.0, 1.0))
    before = archive.elites()
    with pytest.raises(StateError, match="cannot restore"):
        archive.restore([Elite(2, 1.0, (1.0, 1.0), 2), bad])
    assert archive.elites() == before


def test_get_outside_the_archive_raises(archive: ArchiveBase) -> None:
    for cell in (-1, archive.cells):
        with pytest.raises(IndexError):
            archive.get(cell)


def test_fitness_grid_shows_each_elite_at_its_cell(archive: ArchiveBase) -> None:
    result = archive.try_insert(1, 4.0, (7.0, -2.0))
    grid = archive.fitness_grid()
    assert grid[archive.cell_index(result.cell)] == 4.0
    assert np.isnan(grid).sum() == archive.cells - 1


def test_an_archive_refuses_a_config_of_another_kind() -> None:
    with pytest.raises(ConfigError, match="kind"):
        GridArchive(CONFIGS["cvt"])
    with pytest.raises(ConfigError, match="kind"):
        CVTArchive(CONFIGS["grid"])


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(CONFIGS)),
    point=st.tuples(
        st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False)
    ),
)
def test_every_finite_descriptor_maps_to_a_valid_cell(kind: str, point: tuple[float, float]) -> None:
    archive = make(kind)
    cell = archive.cell_of(point)
    assert 0 <= cell < archive.cells
    assert archive.try_insert(0, 1.0, point).cell == cell


# --- the grid ---------------------------------------------------------------------------------------------


def grid(dims: tuple[int, ...] = (4, 5)) -> GridArchive:
    return GridArchive(ArchiveConfig(dims=dims, ranges=RANGES))


@pytest.mark.parametrize(
    ("point", "index"),
    [
        ((0.0, -5.0), (0, 0)),  # the lower bounds: first bins
        ((10.0, 5.0), (3, 4)),  # the upper bounds: last bins, not one past them
        ((np.nextafter(10.0, 0.0), np.nextafter(5.0, 0.0)), (3, 4)),  # just below the upper bounds
        ((2.5, -3.0), (1, 1)),  # exactly on an inner edge: the upper bin
        ((np.nextafter(2.5, 0.0), np.nextafter(-3.0, -5.0)), (0, 0)),  # just below an inner edge
        ((-0.1, -5.1), (0, 0)),  # below the ranges
        ((10.1, 1e9), (3, 4)),  # above the ranges
        ((-1e9, 1e9), (0, 4)),
    ],
)
def test_grid_cell_mapping_at_the_edges(point: tuple[float, float], index: tuple[int, int]) -> None:
    archive = grid()
    cell = archive.cell_of(point)
    assert archive.cell_index(cell) == index
    assert cell == np.ravel_multi_index(index, (4, 5))  # row-major flat index


def test_grid_fitness_grid_has_the_shape_of_dims() -> None:
    archive = grid()
    archive.try_insert(1, -3.0, (9.0, -4.0))
    fitness = archive.fitness_grid()
    assert fitness.shape == (4, 5)
    assert fitness[3, 0] == -3.0


def test_a_grid_of_100k_cells_works() -> None:
    archive = GridArchive(ArchiveConfig(dims=(50, 50, 40), ranges=DEFAULT_RANGES))
    points = np.random.default_rng(0).uniform([0, 0, 0], [20, 20, 60], size=(2_000, 3))
    for k, point in enumerate(points):
        archive.try_insert(k, float(point.sum()), point)
    assert archive.cells == 100_000
    assert 1_900 < len(archive) <= 2_000
    assert archive.fitness_grid().shape == (50, 50, 40)


def test_the_default_ranges_give_each_distinct_seed_its_own_inner_cell(
    seed_walkers: dict[str, Walker],
) -> None:
    archive = GridArchive(ArchiveConfig())
    cells = {
        name: archive.cell_of(dataclasses.astuple(describe(w, SimConfig())))
        for name, w in seed_walkers.items()
    }
    assert len({cells["square"], cells["radial"], cells["cppn_fixed"]}) == 3
    for cell in cells.values():
        assert all(0 < i < 11 for i in archive.cell_index(cell)), cells


# --- CVT --------------------------------------------------------------------------------------------------


def test_cvt_centroids_are_deterministic_given_the_seed() -> None:
    config = CONFIGS["cvt"]
    first = CVTArchive(config).centroids
    unit_centroids.cache_clear()
    np.testing.assert_array_equal(CVTArchive(config).centroids, first)
    other = CVTArchive(dataclasses.replace(config, seed=4)).centroids
    assert not np.array_equal(other, first)


def test_cvt_centroids_lie_in_the_ranges_and_each_is_its_own_cell() -> None:
    archive = make("cvt")
    assert isinstance(archive, CVTArchive)
    centroids = archive.centroids
    assert centroids.shape == (20, 2)
    assert (centroids >= [0.0, -5.0]).all() and (centroids <= [10.0, 5.0]).all()
    assert [archive.cell_of(c) for c in centroids] == list(range(20))


def test_cvt_cell_of_is_the_nearest_centroid_in_range_scaled_units() -> None:
    archive = make("cvt")
    assert isinstance(archive, CVTArchive)
    unit = (archive.centroids - [0.0, -5.0]) / [10.0, 10.0]
    for point in np.random.default_rng(1).uniform([0.0, -5.0], [10.0, 5.0], size=(300, 2)):
        scaled = (point - [0.0, -5.0]) / [10.0, 10.0]
        assert archive.cell_of(point) == int(np.argmin(((unit - scaled) ** 2).sum(axis=1)))


def test_nearest_on_a_hand_made_case() -> None:
    centroids = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    points = np.array([[0.1, 0.1], [0.9, 0.2], [0.2, 0.8], [5.0, 0.0], [-3.0, 4.0]])
    assert nearest(points, centroids).tolist() == [0, 1, 2, 1, 2]


def test_nearest_gives_the_same_answer_in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    points, centroids = rng.random((1_000, 3)), rng.random((50, 3))
    whole = nearest(points, centroids)
    monkeypatch.setattr(_cvt, "_CHUNK_ELEMENTS", 7 * 50)
    np.testing.assert_array_equal(nearest(points, centroids), whole)
    brute = np.argmin(((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2), axis=1)
    np.testing.assert_array_equal(whole, brute)


def test_cvt_uses_ranges_not_dims() -> None:
    config = ArchiveConfig(kind="cvt", ranges=((0.0, 1.0),) * 4, cvt_cells=10, cvt_samples=100)
    archive = CVTArchive(config)
    assert archive.cells == 10
    assert archive.fitness_grid().shape == (10,)
    assert archive.cell_index(7) == (7,)


# --- config -----------------------------------------------------------------------------------------------


def test_default_config() -> None:
    config = ArchiveConfig()
    assert config.kind == "grid" and config.kind is ArchiveKind.GRID
    assert config.cells == 1728
    assert ArchiveConfig(kind="cvt").cells == 1728


def test_config_survives_a_json_round_trip() -> None:
    config = ArchiveConfig(kind="cvt", ranges=((0, 1), (2, 3.5)), dims=(3, 3), fitness_offset=2)
    data = json.loads(json.dumps(dataclasses.asdict(config)))
    assert ArchiveConfig(**data) == config  # lists from JSON become tuples again
    assert config.ranges == ((0.0, 1.0), (2.0, 3.5))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "hex"}, "kind"),
        ({"dims": (12, 0, 12)}, "dims"),
        ({"dims": (12, 12)}, "dims"),
        ({"dims": (True, 12, 12)}, "dims"),
        ({"dims": ()}, "dims"),
        ({"ranges": ()}, "ranges"),
        ({"ranges": ((0.0, 1.0), (2.0, 2.0), (0.0, 1.0))}, "ranges[1]"),
        ({"ranges": ((0.0, math.nan), (0.0, 1.0), (0.0, 1.0))}, "ranges[0]"),
        ({"ranges": ((0.0, 1.0), (0.0, 1.0), (0.0,))}, "ranges[2]"),
        ({"cvt_cells": 0}, "cvt_cells"),
        ({"cvt_samples": 100}, "cvt_samples"),
        ({"cvt_iterations": -1}, "cvt_iterations"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"fitness_offset": -1.0}, "fitness_offset"),
        ({"fitness_offset": math.inf}, "fitness_offset"),
        ({"dims": (1000, 1000, 1000)}, "cells"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        ArchiveConfig(**changes)


# --- parent selection -------------------------------------------------------------------------------------

SELECTORS = [UniformSelector(), TournamentSelector(size=3)]


@pytest.mark.parametrize("selector", SELECTORS, ids=type)
def test_selecting_from_an_empty_archive_raises(selector: UniformSelector, archive: ArchiveBase) -> None:
    with pytest.raises(StateError, match="empty"):
        selector.select(archive, 4, np.random.default_rng(0))


@pytest.mark.parametrize("selector", SELECTORS, ids=type)
def test_selection_returns_elites_of_the_archive(selector: UniformSelector, archive: ArchiveBase) -> None:
    for k, (_, point) in enumerate(distinct_cells(archive, 4)):
        archive.try_insert(k, float(k), point)
    chosen = selector.select(archive, 50, np.random.default_rng(0))
    assert len(chosen) == 50
    assert all(archive.get(e.cell) == e for e in chosen)
    assert chosen == selector.select(archive, 50, np.random.default_rng(0))
    assert selector.select(archive, 0, np.random.default_rng(0)) == []
    with pytest.raises(ValueError, match="n must be"):
        selector.select(archive, -1, np.random.default_rng(0))


def selection_counts(
    selector: UniformSelector | TournamentSelector, draws: int
) -> tuple[list[int], np.ndarray]:
    archive = grid()
    pairs = distinct_cells(archive, 5)
    for k, (_, point) in enumerate(pairs):
        archive.try_insert(k, 10.0**k, point)  # wildly different fitness must not matter to uniform selection
    chosen = selector.select(archive, draws, np.random.default_rng(0))
    cells = [cell for cell, _ in pairs]
    return cells, np.array([sum(e.cell == cell for e in chosen) for cell in cells])


def test_uniform_selection_is_uniform_over_filled_cells() -> None:
    draws = 20_000
    _, counts = selection_counts(UniformSelector(), draws)
    assert counts.sum() == draws  # never an empty cell
    np.testing.assert_allclose(counts, draws / 5, atol=300)  # about 5 standard deviations


def test_tournament_selection_favours_the_fittest() -> None:
    draws = 20_000
    _, counts = selection_counts(TournamentSelector(size=2), draws)
    expected = [(2 * k + 1) / 25 * draws for k in range(5)]  # P(best of two is the k-th of 5) = (2k + 1) / 25
    np.testing.assert_allclose(counts, expected, atol=300)


def test_tournament_size_is_validated() -> None:
    with pytest.raises(ConfigError, match="size"):
        TournamentSelector(size=0)
