"""study.tracking: what the study prints about its store."""
from __future__ import annotations


def test_the_ui_url_opens_the_runs_table_of_the_store_the_study_wrote():
    from study.tracking import ui_url

    assert ui_url("sqlite:////x/mlflow.db", "3") == "http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"
    assert ui_url("http://10.0.0.2:5000/", "7") == "http://10.0.0.2:5000/#/experiments/7?workflowType=machine_learning"
