"""study.cli: the `gan-study` entry point dispatches to the runner, the calibration, the report and the UI."""
from __future__ import annotations

from study.cli import main


def test_ui_uses_the_runners_store(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("GAN_STUDY_HOME", str(tmp_path))
    assert main(["ui", "--print", "--port", "5055"]) == 0
    assert capsys.readouterr().out.strip().endswith(
        f"-m mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'} --port 5055")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert main(["ui", "--print"]) == 0
    assert "--backend-store-uri http://127.0.0.1:5001 " in capsys.readouterr().out


def test_run_and_bad_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GAN_STUDY_HOME", str(tmp_path / "home"))
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2 and "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["report", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no report notebook 'nope'; known: " in err and "label_noise" in err
    assert not (tmp_path / "home").exists()
