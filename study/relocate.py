"""A local study folder that was moved: its SQLite store still names the artifacts by their old absolute paths.

A study on a local store keeps each experiment's artifacts beside the database (`<store dir>/mlartifacts/<name>`,
study/tracking.py `artifact_root`), and MLflow records that folder, and each run's folder under it, as absolute
paths. Move `.studies/` (or copy it to another machine) and the UI shows no sample grids, and a new study in the
moved store would write its artifacts back under the old path. `relocate_artifacts` points the records that lay
under the store's old folder at the same places under its new one. MLflow has no API to change an experiment's
artifact location, so this updates its tables (`experiments.artifact_location`, `runs.artifact_uri`) in one
transaction, and only where the old place is gone and the new one holds the experiment's artifacts.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from study.tracking import ARTIFACTS_DIR, sqlite_path

_UNDER_STORE = re.compile(rf"^(?P<root>/.+)/{ARTIFACTS_DIR}/(?P<name>[^/]+)$")


def relocate_artifacts(db: Path) -> list[tuple[str, str]]:
    """Re-point the experiments of the SQLite store `db` whose artifact folder lay under the store's old folder
    -> [(old folder, new folder)] of the experiments changed (none when nothing moved)."""
    if not db.is_file():
        return []
    here = db.resolve().parent
    moved = []
    with sqlite3.connect(db) as con:  # commits on success, rolls back on an error
        for exp_id, location in con.execute("SELECT experiment_id, artifact_location FROM experiments").fetchall():
            found = _UNDER_STORE.match(location or "")
            if not found or Path(found["root"]) == here or Path(location).exists():
                continue
            new = here / ARTIFACTS_DIR / found["name"]
            if not new.is_dir():
                continue
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (str(new), exp_id))
            con.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                        "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                        (str(new), len(location) + 1, exp_id, len(location), location))
            moved.append((location, str(new)))
    return moved


def relocate_store(uri: str) -> None:
    """relocate_artifacts for a sqlite:/// store URI (other stores keep their artifacts elsewhere), saying so."""
    path = sqlite_path(uri)
    for old, new in relocate_artifacts(path) if path is not None else []:
        print(f"the study folder was moved: artifacts recorded under {old} are read from {new}", flush=True)
