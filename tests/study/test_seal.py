"""study.seal and watchdog.StateSeal: --resume accepts the Tune state files the study wrote, and refuses one that
was changed or added in storage (a pickle that would run code), naming it; files Tune never unpickles are free."""
from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from study import seal
from study.spec import SpecError
from study.watchdog import StateSeal


@pytest.fixture(autouse=True)
def trust(tmp_path, monkeypatch):
    monkeypatch.setenv(seal.TRUST_ENV, str(tmp_path / "trusted"))


def _tune_dirs(tmp_path):
    """A staging directory as Tune's driver writes it, and its copy in storage (what the syncer uploads)."""
    staging, run = tmp_path / "staging", tmp_path / "storage" / "run"
    for root in (staging, run):
        (root / "t1" / "checkpoint_000001").mkdir(parents=True)
        (root / "experiment_state-s.json").write_text('{"trial_data": []}')
        (root / "searcher-state-s.pkl").write_bytes(pickle.dumps({"optuna": b""}))
        (root / "t1" / "params.pkl").write_bytes(pickle.dumps({"lr": 0.1}))
        (root / "t1" / "result.json").write_text("{}")
    (run / "t1" / "checkpoint_000001" / "state.pt").write_bytes(b"weights")  # workers write these, not the driver
    return staging, run


def _sealed(tmp_path):
    staging, run = _tune_dirs(tmp_path)
    watch = StateSeal(str(run))
    watch.on_step_end(1, [SimpleNamespace(storage=SimpleNamespace(experiment_driver_staging_path=str(staging)))])
    return watch, staging, run


def test_the_state_the_study_wrote_is_accepted(tmp_path):
    _, _, run = _sealed(tmp_path)
    seal.check(str(run))
    mode = stat.S_IMODE(os.stat(seal.record_path(str(run))).st_mode)
    assert mode == 0o600


def test_a_replaced_pickle_is_refused_by_name(tmp_path):
    _, _, run = _sealed(tmp_path)
    (run / "searcher-state-s.pkl").write_bytes(b"cos\nsystem\n(S'touch pwned'\ntR.")
    with pytest.raises(SpecError, match=r"searcher-state-s\.pkl is not a file this study wrote"):
        seal.check(str(run))


def test_an_added_state_file_or_checkpoint_pickle_is_refused(tmp_path):
    _, _, run = _sealed(tmp_path)
    (run / "experiment_state-zzz.json").write_text("{}")  # Tune loads the newest name
    with pytest.raises(SpecError, match="experiment_state-zzz.json"):
        seal.check(str(run))
    (run / "experiment_state-zzz.json").unlink()
    (run / "t1" / "checkpoint_000001" / "dict_checkpoint.pkl").write_bytes(b"x")  # Trainable.restore unpickles it
    with pytest.raises(SpecError, match="dict_checkpoint.pkl"):
        seal.check(str(run))


def test_files_tune_never_unpickles_may_change(tmp_path):
    _, _, run = _sealed(tmp_path)
    (run / "t1" / "result.json").write_text('{"epoch": 3}')
    (run / ".validate_storage_marker").write_text("")  # Tune writes it straight to storage; never loaded
    (run / "t1" / "checkpoint_000001" / "state.pt").write_bytes(b"other weights")  # loaded weights_only=True
    seal.check(str(run))


def test_no_record_is_refused_naming_where_it_looked(tmp_path):
    _, run = _tune_dirs(tmp_path)
    with pytest.raises(SpecError, match="holds no record") as err:
        seal.check(str(run))
    assert str(seal.record_path(str(run))) in str(err.value)


def test_a_rewritten_state_file_is_recorded_again_and_older_versions_stay_valid(tmp_path):
    watch, staging, run = _sealed(tmp_path)
    old = (run / "experiment_state-s.json").read_text()
    (staging / "experiment_state-s.json").write_text('{"trial_data": [1, 2]}')
    watch.on_step_end(2, [])
    (run / "experiment_state-s.json").write_text('{"trial_data": [1, 2]}')  # the syncer uploaded the new one
    seal.check(str(run))
    (run / "experiment_state-s.json").write_text(old)  # or had not yet: the earlier version is the study's too
    seal.check(str(run))


def test_a_new_trial_is_recorded_with_the_save_that_uploads_it(tmp_path):
    """Between two saves the tree is not walked; the save that comes before the upload brings the new files in."""
    watch, staging, run = _sealed(tmp_path)
    for root in (staging, run):
        (root / "t2").mkdir()
        (root / "t2" / "params.pkl").write_bytes(pickle.dumps({"lr": 0.2}))
    watch.on_step_end(2, [])  # no save yet: not walked
    with pytest.raises(SpecError, match="t2/params.pkl"):
        seal.check(str(run))
    (staging / "experiment_state-s.json").write_text('{"trial_data": [2]}')  # Tune saves, then uploads
    watch.on_step_end(3, [])
    (run / "experiment_state-s.json").write_text('{"trial_data": [2]}')
    seal.check(str(run))


def test_error_pickle_written_to_storage_is_vouched_for(tmp_path):
    watch, _, run = _sealed(tmp_path)
    (run / "t1" / "error.pkl").write_bytes(pickle.dumps(RuntimeError("boom")))
    with pytest.raises(SpecError, match="error.pkl"):
        seal.check(str(run))
    watch.on_trial_error(3, [], _failed_trial(run, "t1"))
    seal.check(str(run))


def _failed_trial(run, name: str):
    """What Trial.handle_error leaves: error.txt and error.pkl in the trial's storage directory, named in its
    metadata; the error readers are Tune's own (Trial.get_pickled_error, Trial.get_error)."""
    import pyarrow.fs
    from ray.tune.experiment import Trial

    class Failed(SimpleNamespace):
        get_pickled_error = Trial.get_pickled_error
        get_error = Trial.get_error

    (run / name / "error.txt").write_text("RuntimeError: boom")
    storage = SimpleNamespace(trial_dir_name=name, storage_filesystem=pyarrow.fs.LocalFileSystem(),
                              trial_fs_path=str(run / name))
    return Failed(storage=storage, status="ERROR",
                  run_metadata=SimpleNamespace(error_filename="error.txt", pickled_error_filename="error.pkl"))


class _Planted:
    """A pickle that runs code when loaded: it writes the file named."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "ran"))


def test_the_running_study_never_unpickles_an_error_pickle(tmp_path):
    """An error.pkl swapped in storage after the watch recorded it is not what fit()'s result grid loads."""
    from ray.tune import ResultGrid

    watch, _, run = _sealed(tmp_path)
    (run / "t1" / "error.pkl").write_bytes(pickle.dumps(RuntimeError("boom")))
    trial = _failed_trial(run, "t1")
    assert isinstance(trial.get_pickled_error(), RuntimeError)  # what Tune would load before the watch
    watch.on_trial_error(3, [], trial)
    ran = tmp_path / "ran"
    (run / "t1" / "error.pkl").write_bytes(pickle.dumps(_Planted(str(ran))))  # swapped after the record
    error = ResultGrid._populate_exception(trial)
    assert error is not None and "boom" in str(error) and not ran.exists()
    with pytest.raises(SpecError, match="t1/error.pkl"):  # and a resume refuses the swapped file
        seal.check(str(run))


def test_a_restored_callback_forgets_its_staging_directory(tmp_path):
    watch, _, run = _sealed(tmp_path)
    again = pickle.loads(pickle.dumps(watch))  # a restored Tuner brings the callback back from tuner.pkl
    assert again.run_dir == str(run) and again.staging is None and again.seen == {}
