"""study.watchdog: the store faults that stop a study (file gone, replaced, locked; server silent), found on
real files, a real SQLite lock and real sockets; a fault stops Tune by its graceful signal."""
from __future__ import annotations

import signal
import sqlite3

import pytest

from study import watchdog
from study.watchdog import FAULTS, StoreWatch, store_gone
from tests.tests_support import free_port


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE runs (id INTEGER)")
    return path


def test_a_present_store_has_no_fault(store):
    assert StoreWatch(f"sqlite:///{store}").check(after_error=True) is None
    assert store_gone(f"sqlite:///{store}") is None


def test_a_store_moved_away_is_gone_and_the_probe_creates_nothing(store):
    watch = StoreWatch(f"sqlite:///{store}")
    store.rename(store.with_suffix(".away"))
    assert watch.check(after_error=True) == f"the SQLite file {store} is gone"
    assert store_gone(f"sqlite:///{store}") == f"the SQLite file {store} is gone"
    assert not store.exists()  # sqlite3.connect would have created an empty file


def test_a_store_replaced_by_another_file_is_refused(store):
    watch = StoreWatch(f"sqlite:///{store}")
    store.rename(store.with_suffix(".old"))
    with sqlite3.connect(store) as con:  # a new, empty store at the same path
        con.execute("CREATE TABLE runs (id INTEGER)")
    assert watch.check() == f"the SQLite file {store} was replaced by another file"
    watch.setup()  # a resumed study takes the store as it is when it starts
    assert watch.check() is None


def test_a_lock_held_past_the_timeout_is_a_fault_only_after_a_trial_error(store):
    watch = StoreWatch(f"sqlite:///{store}", timeout=0.2)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert watch.check(after_error=False) is None  # a result: no lock probe (writers hold locks briefly)
        assert watch.check(after_error=True) == f"the SQLite file {store} stayed locked for 0.2 s (another process " \
                                                "holds it)"
    finally:
        holder.rollback()
        holder.close()
    assert watch.check(after_error=True) is None


def test_a_silent_server_is_a_fault_and_other_stores_are_not_probed():
    port = free_port()
    why = StoreWatch(f"http://127.0.0.1:{port}", timeout=0.5).check()
    assert why is not None and why.startswith(f"the tracking server http://127.0.0.1:{port} does not answer (")
    assert "refused" in why
    assert StoreWatch("postgresql://u@db/mlflow").check() is None  # no probe for a database server


def test_a_fault_is_recorded_and_stops_tune_by_its_graceful_signal(store, monkeypatch):
    got = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: got.append("SIGUSR1"))
    try:
        uri = f"sqlite:///{store}"
        watch = StoreWatch(uri)
        watch.on_step_end(1, [])
        assert got == [] and uri not in FAULTS
        store.unlink()
        monkeypatch.setattr(watchdog, "EVERY_S", 3600.0)
        watch.on_step_end(2, [])  # throttled: no probe yet
        assert got == []
        watch.on_trial_error(3, [], None)  # an error always probes
        assert got == ["SIGUSR1"] and FAULTS[uri] == f"the SQLite file {store} is gone"
        watch.on_trial_error(4, [], None)  # once
        assert got == ["SIGUSR1"]
        StoreWatch(uri)  # a new run of the study starts with no fault recorded
        assert uri not in FAULTS
    finally:
        signal.signal(signal.SIGUSR1, previous)
