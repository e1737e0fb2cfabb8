"""study.reproduce: the published table beside the study's, with marks that can fail (known answers)."""
from __future__ import annotations

import math

import pandas as pd

from study.published import PUBLISHED
from study.reproduce import main, mark, mean_se, reproduction_table


def test_marks_compare_two_se_intervals():
    assert mark((6.0, 0.1), (6.3, 0.5)) == "ok"  # [5.8, 6.2] meets [5.3, 7.3]
    assert mark((3.0, 0.2), (6.3, 0.5)) == "low"  # [2.6, 3.4] below [5.3, 7.3]
    assert mark((9.0, 0.1), (7.8, 0.1)) == "high"
    assert mark((999.0, 0.2), (1000.0, 0.0)) == "low"  # a published SE of 0 is a point
    assert mark((math.nan, math.nan), (6.3, 0.5)) == "-"


def test_mean_se_over_seeds():
    assert mean_se(pd.Series([6.0, 7.0])) == (6.5, 0.5, 2)
    assert mean_se(pd.Series([4.0])) == (4.0, 0.0, 1)
    assert mean_se(pd.Series([], dtype=float))[2] == 0


def test_reproduction_table_lays_out_the_published_rows():
    df = pd.DataFrame({"variant": ["gan", "gan", "pacgan4"], "eval/modes_covered": [6.0, 7.0, 8.0],
                       "eval/hq_fraction": [0.98, 0.99, 0.5], "eval/kl_to_uniform": [0.4, 0.5, 0.05]})
    t = reproduction_table(df, PUBLISHED["ring8_pacgan"][0])
    assert list(t["row"]) == ["GAN", "PacGAN2", "PacGAN3", "PacGAN4"]
    assert list(t["seeds"]) == [2, 0, 0, 1]
    gan = t.iloc[0]
    assert gan["modes (max 8)"] == "6.5 ± 0.5 [6.3 ± 0.5] ok"
    assert gan["high quality %"] == "98.5 ± 0.5 [98.2 ± 0.2] ok"
    assert t.iloc[1]["modes (max 8)"] == "- [7.9 ± 0.1] -"
    assert t.iloc[3]["high quality %"] == "50.0 ± 0.0 [95.9 ± 1.4] low"  # one seed: 50 % against 95.9 ± 1.4


def test_cli_refuses_a_spec_without_a_published_table_and_a_missing_study(tmp_path, capsys):
    assert main(["label_noise"]) == 2
    assert "no published table" in capsys.readouterr().err
    assert main(["ring8_pacgan", "--quick", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 2
    err = capsys.readouterr().err
    assert "no MLflow experiment 'ring8_pacgan_quick'" in err and "python -m study.run ring8_pacgan --quick" in err


def test_every_published_table_names_a_searched_key_and_grid_values_of_its_spec():
    from study.run import find_spec
    from study.space import format_value
    from study.spec import load_spec

    for name, tables in PUBLISHED.items():
        spec = load_spec(find_spec(name))
        for table in tables:
            assert table.key in spec.search, (name, table.key)
            grid = {format_value(table.key, v) for v in spec.search[table.key].values}
            assert set(table.rows) <= grid, (name, table.cite, set(table.rows) - grid)
            assert all(len(cells) == len(table.columns) for _, cells in table.rows.values())


def test_veegan_cells_without_a_spread_are_points():
    df = pd.DataFrame({"remedies.unrolled.k": [0, 0, 5], "eval/modes_covered": [1.0, 2.0, 8.0],
                       "eval/hq_fraction": [0.99, 0.97, 0.2]})
    t = reproduction_table(df, PUBLISHED["ring8_unrolled"][0])
    assert list(t["row"]) == ["GAN", "Unrolled GAN"]
    assert t.iloc[0]["modes (max 8)"] == "1.5 ± 0.5 [1.0] ok"  # [0.5, 2.5] holds the published 1
    assert t.iloc[1]["high quality %"] == "20.0 ± 0.0 [35.6] low"
