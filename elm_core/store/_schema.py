"""The store's schema as an ordered list of migrations, tracked in `PRAGMA user_version`.

Migration N (1-based) takes a file from user_version N-1 to N. Append new migrations; never edit one that
has shipped. Each is a tuple of single statements (not a script): `sqlite3.executescript` would commit the
transaction the migrations run in.
"""

from __future__ import annotations

import sqlite3

from elm_core.errors import StateError

_V1_RUNS = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL,
    rng_seed INTEGER NOT NULL,
    evaluations INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    rng_state_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""

# Parents are committed before their children, except within one batch: hence the deferred keys.
_V1_INDIVIDUALS = """
CREATE TABLE individuals (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    individual_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    parent_id INTEGER,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    fitness REAL,
    descriptors_json TEXT,
    cell INTEGER,
    walker_json TEXT,
    timings_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, individual_id),
    FOREIGN KEY (run_id, parent_id) REFERENCES individuals (run_id, individual_id)
        DEFERRABLE INITIALLY DEFERRED
)
"""

_V1_MUTATIONS = """
CREATE TABLE mutations (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    batch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    parent_id INTEGER NOT NULL,
    child_id INTEGER,
    operator TEXT NOT NULL,
    style TEXT NOT NULL,
    message TEXT NOT NULL,
    raw_output TEXT NOT NULL,
    mutation_outcome TEXT NOT NULL,
    applied INTEGER NOT NULL,
    ran INTEGER NOT NULL,
    inserted INTEGER NOT NULL,
    fitness_delta REAL,
    PRIMARY KEY (run_id, batch, seq),
    FOREIGN KEY (run_id, parent_id) REFERENCES individuals (run_id, individual_id)
        DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (run_id, child_id) REFERENCES individuals (run_id, individual_id)
        DEFERRABLE INITIALLY DEFERRED
)
"""

_V1_ELITES = """
CREATE TABLE elites (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    cell INTEGER NOT NULL,
    individual_id INTEGER NOT NULL,
    fitness REAL NOT NULL,
    descriptors_json TEXT NOT NULL,
    PRIMARY KEY (run_id, cell),
    FOREIGN KEY (run_id, individual_id) REFERENCES individuals (run_id, individual_id)
        DEFERRABLE INITIALLY DEFERRED
)
"""

_V1_METRICS = """
CREATE TABLE metrics (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    batch INTEGER NOT NULL,
    evaluations INTEGER NOT NULL,
    filled INTEGER NOT NULL,
    coverage REAL NOT NULL,
    qd_score REAL NOT NULL,
    max_fitness REAL,
    applied_fraction REAL NOT NULL,
    ran_fraction REAL NOT NULL,
    inserted_fraction REAL NOT NULL,
    elapsed_s REAL NOT NULL,
    evaluations_per_s REAL NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, batch)
)
"""

_V1 = (
    _V1_RUNS,
    _V1_INDIVIDUALS,
    _V1_MUTATIONS,
    _V1_ELITES,
    _V1_METRICS,
    "CREATE INDEX individuals_parent ON individuals (run_id, parent_id)",
    "CREATE INDEX individuals_batch ON individuals (run_id, batch)",
    "CREATE INDEX individuals_status ON individuals (run_id, status)",
    "CREATE INDEX mutations_parent ON mutations (run_id, parent_id)",
    "CREATE INDEX mutations_child ON mutations (run_id, child_id)",
    "CREATE INDEX elites_individual ON elites (run_id, individual_id)",
)

_V2_TRAINING_JOBS = """
CREATE TABLE training_jobs (
    job_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    config_json TEXT NOT NULL,
    message TEXT NOT NULL,
    progress REAL NOT NULL,
    metrics_json TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""

_V2 = (
    _V2_TRAINING_JOBS,
    "CREATE INDEX training_jobs_run ON training_jobs (run_id)",
    "CREATE INDEX training_jobs_status ON training_jobs (status)",
)

# What the model wrote for each mutation, in tokens (0 for GP and for logs from before v3).
_V3 = ("ALTER TABLE mutations ADD COLUMN generated_tokens INTEGER NOT NULL DEFAULT 0",)

# Per-operator tallies (the dashboard's and `elm watch`'s operator table) read this index alone, never the
# wide mutation rows with their model output: 10 x faster on a run of 100,000 mutations.
_V4 = (
    "CREATE INDEX mutations_operator_tally ON mutations "
    "(run_id, operator, applied, ran, inserted, mutation_outcome, generated_tokens)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file at `path` to LATEST_VERSION in one transaction; refuse a file from newer code.

    `conn` must be in autocommit mode (isolation_level=None) with no transaction open.
    """
    if _check_version(conn, path) == LATEST_VERSION:
        return  # the common case takes no write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _check_version(conn, path)  # another process may have migrated meanwhile
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check_version(conn: sqlite3.Connection, path: str) -> int:
    version = schema_version(conn)
    if version > LATEST_VERSION:
        raise StateError(
            f"store {path} has schema version {version}, newer than this code knows ({LATEST_VERSION}); "
            "upgrade elm to open it"
        )
    return version
