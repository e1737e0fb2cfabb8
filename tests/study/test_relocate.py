"""study/relocate.py: a moved study folder keeps its artifacts readable, on a real MLflow SQLite store."""
from __future__ import annotations

import shutil
from pathlib import Path

from mlflow import MlflowClient

from study.relocate import relocate_artifacts, relocate_store
from study.tracking import experiment_id


def _study_folder(root):
    """A store at root/.studies/mlflow.db with one experiment and a run holding one artifact -> (run id, exp id)."""
    folder = root / ".studies"
    folder.mkdir(parents=True)
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = experiment_id(client, "moved")
    run = client.create_run(exp).info.run_id
    grid = root / "grid.png"
    grid.write_bytes(b"\x89PNG sample grid")
    client.log_artifact(run, str(grid), "samples")
    client.set_terminated(run)
    return run, exp


def test_a_moved_study_folder_reads_and_writes_its_artifacts_where_they_are_now(tmp_path, capsys):
    run, exp = _study_folder(tmp_path / "a")
    assert relocate_artifacts(tmp_path / "a" / ".studies" / "mlflow.db") == []  # not moved: nothing changes
    shutil.move(tmp_path / "a", tmp_path / "b")
    new_db = tmp_path / "b" / ".studies" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{new_db}")
    relocate_store(f"sqlite:///{new_db}")
    old = tmp_path / "a" / ".studies" / "mlartifacts" / "moved"
    assert f"artifacts recorded under {old} are read from" in capsys.readouterr().out
    assert relocate_artifacts(new_db) == []  # once
    assert client.get_experiment(exp).artifact_location == str(tmp_path / "b" / ".studies" / "mlartifacts" / "moved")
    assert [f.path for f in client.list_artifacts(run, "samples")] == ["samples/grid.png"]
    got = client.download_artifacts(run, "samples/grid.png", str(tmp_path))
    assert Path(got).read_bytes() == b"\x89PNG sample grid"
    later = client.create_run(exp).info.run_id  # a new study in the moved store writes beside it
    client.log_text(later, "x", "note.txt")
    assert (tmp_path / "b" / ".studies" / "mlartifacts" / "moved" / later / "artifacts" / "note.txt").is_file()
    assert not (tmp_path / "a").exists()


def test_artifacts_kept_elsewhere_or_still_in_place_are_left_alone(tmp_path):
    run, exp = _study_folder(tmp_path / "a")
    db = tmp_path / "a" / ".studies" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    other = client.create_experiment("elsewhere", artifact_location=str(tmp_path / "bucket"))
    shutil.copytree(tmp_path / "a", tmp_path / "copy")  # copied, not moved: the old folder is still there
    assert relocate_artifacts(tmp_path / "copy" / ".studies" / "mlflow.db") == []
    shutil.rmtree(tmp_path / "a")  # now gone: only the store's own experiment follows
    moved = relocate_artifacts(tmp_path / "copy" / ".studies" / "mlflow.db")
    assert [new for _, new in moved] == [str(tmp_path / "copy" / ".studies" / "mlartifacts" / "moved")]
    copied = MlflowClient(f"sqlite:///{tmp_path / 'copy' / '.studies' / 'mlflow.db'}")
    assert copied.get_experiment(other).artifact_location == str(tmp_path / "bucket")
    assert copied.get_run(run).info.artifact_uri.startswith(str(tmp_path / "copy" / ".studies" / "mlartifacts"))
