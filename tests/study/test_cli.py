"""study.cli: the `gan-study` entry point dispatches to the runner, the calibration, the report and the UI."""
from __future__ import annotations

from study.cli import main


def test_ui_uses_the_runners_store(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("GAN_STUDY_HOME", str(tmp_path))
    assert main(["ui", "--print", "--port", "5055"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f"-m mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'} --port 5055")
    assert out[1].startswith("no study in sqlite:///") and not (tmp_path / "mlflow.db").exists()

    from mlflow.tracking import MlflowClient

    from study.tracking import experiment_id

    exp = experiment_id(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"), "label_noise-quick")
    assert main(["ui", "--print", "--port", "5055"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["each study's runs table, once the UI is up:",
                       f"  label_noise-quick: http://127.0.0.1:5055/#/experiments/{exp}?workflowType=machine_learning"]
    from study.tracking import share_study_view  # a study stored its view: the UI's line opens it

    view = share_study_view(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"), exp, ["remedies.label_flip.rate"])
    assert main(["ui", "--print", "--port", "5055"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == (f"  label_noise-quick: http://127.0.0.1:5055/#/experiments/{exp}"
                                                      f"/runs?workflowType=machine_learning&viewStateShareKey={view}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    assert main(["ui", "--print"]) == 0
    assert f"--backend-store-uri sqlite:///{tmp_path / 'other.db'} " in capsys.readouterr().out
    assert main(["ui", "--print", "--tracking-uri", "http://10.0.0.2:5000"]) == 0  # nothing asked of the server
    assert "http://10.0.0.2:5000/#/experiments?workflowType=machine_learning (the server" in capsys.readouterr().out


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
