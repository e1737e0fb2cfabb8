"""A study's MLflow store watched while Tune runs: a store that disappears, is replaced, stops answering or stays
locked stops the study as Ctrl-C would (Tune saves every trial's state; `--resume` continues it), never one
failed trial after another writing into a new empty store.

Tune ends a run gracefully on SIGUSR1 as on SIGINT (ray/tune/tune.py, `_setup_signal_catching`), so the
callback sends that signal to its own process; `launch` then reports the fault instead of a summary.

StateSeal, the other callback here, records the Tune state files the driver writes, for `--resume` (study/seal.py).
"""
from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from ray import tune

from study import seal
from study.tracking import server_fault, sqlite_path

PROBE_TIMEOUT_S = 10.0  # how long the store may take to answer a probe (/health, a SQLite write lock)
EVERY_S = 5.0  # the least time between two probes that no trial error asked for


def store_gone(uri: str) -> str | None:
    """Why a sqlite:/// store's file is not there (it was when the study started), or None."""
    path = sqlite_path(uri)
    return f"the SQLite file {path} is gone" if path is not None and not path.is_file() else None


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _locked(path: Path, timeout: float) -> bool:
    """Whether a write lock on the SQLite file cannot be had within `timeout` (the file is never created)."""
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=timeout)
    except sqlite3.Error:
        return False  # gone: the inode check says so
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
    except sqlite3.OperationalError as err:
        return "locked" in str(err)
    finally:
        con.close()
    return False


FAULTS: dict[str, str] = {}  # tracking URI -> the fault that stopped this process's study on it (for launch)


class StoreWatch(tune.Callback):
    """Probe the store at the end of Tune's steps (at most every EVERY_S) and after every trial error; on a fault,
    record it in FAULTS and stop the Tune run gracefully (SIGUSR1).

    A restored Tuner brings back the pickled callback of the run it continues: `setup` (called by Tune at the
    start of every run) takes the store as it is now, and the fault is read from FAULTS, not from the object.
    """

    def __init__(self, uri: str, timeout: float = PROBE_TIMEOUT_S):
        self.uri, self.timeout = uri, timeout
        self.setup()

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        self.path = sqlite_path(self.uri)
        self.inode = _inode(self.path) if self.path else None
        self.fault: str | None = None
        self.last = time.monotonic()
        FAULTS.pop(self.uri, None)

    def check(self, after_error: bool = False) -> str | None:
        """Why the store cannot take the study's writes now, or None."""
        if self.path is None:
            if not self.uri.startswith(("http://", "https://")):
                return None  # a database server: its client's errors fail the trials, which resume
            why = server_fault(self.uri, self.timeout)
            return f"the tracking server {self.uri} does not answer ({why})" if why else None
        now = _inode(self.path)
        if now is None:
            return store_gone(self.uri) or f"the SQLite file {self.path} cannot be read"
        if now != self.inode:
            return f"the SQLite file {self.path} was replaced by another file"
        if after_error and _locked(self.path, self.timeout):
            return f"the SQLite file {self.path} stayed locked for {self.timeout:g} s (another process holds it)"
        return None

    def _probe(self, after_error: bool) -> None:
        if self.fault is not None or (not after_error and time.monotonic() - self.last < EVERY_S):
            return
        self.last = time.monotonic()
        self.fault = self.check(after_error)
        if self.fault is not None:
            FAULTS[self.uri] = self.fault
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune: stop, save the experiment state, return from fit()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._probe(after_error=False)  # every loop of Tune's controller: also while every trial waits on the store

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._probe(after_error=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._probe(after_error=True)  # a trial retried after an error (FailureConfig.max_failures)


def _stamp(path: str) -> tuple[int, int] | tuple[()]:
    """(size, mtime_ns) of a file, or () when it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ()
    return st.st_size, st.st_mtime_ns


class StateSeal(tune.Callback):
    """Record the driver staging directory's guarded files at the end of every Tune step and of the experiment,
    and a failed trial's error.pkl (the record: `vouch`), which this run itself then never unpickles. Only files whose
    size or mtime changed are read."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.seen: dict[str, tuple[int, int]] = {}
        self.staging: str | None = None
        self.top: tuple = ()

    def sweep(self, force: bool = False) -> None:
        """Record what changed in the staging directory. Tune uploads it only right after a save, which rewrites
        the top-level state files, so the whole tree is walked only when one of those changed (or `force`)."""
        if self.staging is None or not os.path.isdir(self.staging):
            return
        top = tuple(sorted(_stamp(e.path) + (e.name,) for e in os.scandir(self.staging) if e.is_file()))
        if top != self.top or force:
            self.top = top
            digests = self._changed()
            if digests:
                seal.vouch(self.run_dir, digests)

    def _changed(self) -> dict[str, str]:
        """rel -> sha256 of the guarded staging files whose size or mtime changed since they were last read."""
        assert self.staging is not None
        digests = {}
        for root, _, names in os.walk(self.staging):
            for name in names:
                path = os.path.join(root, name)
                rel = os.path.relpath(path, self.staging).replace(os.sep, "/")
                stamp = _stamp(path)
                if seal.guarded(rel) and stamp and self.seen.get(rel) != stamp:
                    try:
                        digests[rel] = seal.digest(Path(path).read_bytes())
                    except FileNotFoundError:  # replaced or removed by Tune while we walked
                        continue
                    self.seen[rel] = stamp
        return digests

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if trials and self.staging is None:
            self.staging = trials[0].storage.experiment_driver_staging_path
        self.sweep()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Record the error.pkl Trial.handle_error just wrote (a resume checks it), then drop the trial's pointer to
        it: the result grid `fit()` builds would unpickle it from storage, where it could have been swapped since.
        It reads the text trace (error.txt) instead, as Tune does for errors it cannot pickle."""
        seal.vouch_stored(self.run_dir, f"{trial.storage.trial_dir_name}/error.pkl")
        trial.run_metadata.pickled_error_filename = None

    on_trial_recover = on_trial_error  # a retried trial's error.pkl, written the same way

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.sweep(force=True)

    def __getstate__(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "seen": {}, "staging": None, "top": ()}  # a restored run has a new staging dir
