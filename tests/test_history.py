"""Run history: flattening reports, appending rows with new metrics, the last accepted run, the trend."""
import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from lipforge.history import (BASE_COLUMNS, HistoryError, append, flatten_metrics, gated_metrics, last_accepted,
                              latest_accepted, load_history, make_row, plot_history, record_run, trend_table)
from lipforge.params import parse_params
from lipforge.provenance import current_machine, machine_label

REPORT_V1 = {
    "split": "test", "clips": 12, "method": "stabilized",
    "rows": {"stabilized": {"lse_c": 1.5, "lse_d": 9.0, "ssim": 0.8, "psnr": None, "fid": float("nan")},
             "ground_truth": {"ssim": 1.0}},
    "gates": {"lse_c_beats_copy_reference": {"value": 1.5, "passed": True}},
    "backends": {"generator": {"sha256": "abc"}},
    "resumed_from_steps": [4],
}


def test_flatten_metrics_keeps_finite_numbers_under_dotted_keys():
    assert flatten_metrics(REPORT_V1) == {
        "clips": 12.0, "rows.stabilized.lse_c": 1.5, "rows.stabilized.lse_d": 9.0, "rows.stabilized.ssim": 0.8,
        "rows.ground_truth.ssim": 1.0, "gates.lse_c_beats_copy_reference.value": 1.5, "resumed_from_steps.0": 4.0,
    }
    assert flatten_metrics({}) == {}


def _row(minute, accepted, metrics, kind="nightly", rev="a" * 40, machine="CPU A [avx2]"):
    return make_row(pd.Timestamp(f"2026-01-01 00:{minute:02d}", tz="UTC"), f"run{minute}", kind, rev, False,
                    "p" * 64, "d" * 64, accepted, "", metrics, machine)


def test_make_row_checks_kind_and_timezone():
    with pytest.raises(HistoryError, match="run kind 'weekly' is not one of pipeline, nightly, manual"):
        make_row(pd.Timestamp.now(tz="UTC"), "r", "weekly", None, None, "p", None, None, "", {})
    with pytest.raises(HistoryError, match="timezone-aware"):
        make_row(pd.Timestamp("2026-01-01"), "r", "manual", None, None, "p", None, None, "", {})


def test_append_evolves_the_schema_and_keeps_nullable_columns():
    h = append(load_history("/nonexistent/history.parquet"), _row(1, True, {"rows.stabilized.lse_c": 1.5}))
    h = append(h, _row(2, None, {"rows.stabilized.lse_c": 1.4, "rows.stabilized.vtcs": 0.3}, kind="manual"))
    assert list(h.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert h["metric:rows.stabilized.vtcs"].isna().tolist() == [True, False]
    assert h["accepted"].dtype == "boolean" and h["accepted"].isna().tolist() == [False, True]
    assert str(h["time"].dtype) == "datetime64[us, UTC]"


def test_last_accepted_is_the_newest_accepted_row(tmp_path):
    h = load_history(tmp_path / "none.parquet")
    assert h.empty and list(h.columns) == list(BASE_COLUMNS) and latest_accepted(h) is None
    for minute, accepted, lse_c in ((1, True, 1.0), (2, False, 0.5), (3, True, 1.2), (4, None, 1.3), (5, False, 0.1)):
        h = append(h, _row(minute, accepted, {"rows.stabilized.lse_c": lse_c}))
    best = latest_accepted(h)
    assert best["run_id"] == "run3" and best["accepted"] is True and best["metric:rows.stabilized.lse_c"] == 1.2
    assert json.loads(best["metrics_json"]) == {"rows.stabilized.lse_c": 1.2}
    assert isinstance(best["time"], pd.Timestamp) and best["git_dirty"] is False


def test_gated_metrics_resolve_the_method():
    params = parse_params({"train_generator": {"method": "wav2lip"}})
    assert gated_metrics(params) == ["rows.wav2lip.lse_c", "rows.wav2lip.lse_d", "rows.wav2lip.ssim",
                                     "rows.wav2lip.mouth_opening_corr_pooled"]


def test_trend_table_shows_rev_verdict_and_gated_metrics(tmp_path):
    h = append(load_history(tmp_path / "x"), _row(1, True, {"rows.m.lse_c": 1.0, "rows.m.ssim": 0.7}))
    h = append(h, make_row(pd.Timestamp("2026-01-01 00:05", tz="UTC"), "r2", "manual", None, True, "p", None, None,
                           "", {"rows.m.lse_c": 1.1}))
    h = append(h, _row(3, False, {"rows.m.lse_c": 0.2}, rev="b" * 40, machine="CPU B [avx2 avx512f]"))
    table = trend_table(h, ["rows.m.lse_c", "rows.m.ssim"])
    assert list(table.columns) == ["time", "kind", "rev", "accepted", "lse_c", "ssim", "machine"]
    assert table["rev"].tolist() == ["aaaaaaaa", "bbbbbbbb", "-*"]  # sorted by time
    assert table["machine"].tolist() == ["CPU A [avx2]", "CPU B [avx2 avx512f]", "-"]  # "-": recorded without one
    assert table["accepted"].tolist() == ["yes", "no", "-"]
    assert table["lse_c"].tolist() == [1.0, 0.2, 1.1]
    assert table["ssim"].isna().tolist() == [False, True, True]


def test_plot_history_writes_a_png(tmp_path):
    h = append(load_history(tmp_path / "x"), _row(1, True, {"rows.m.lse_c": 1.0}))
    h = append(h, _row(2, False, {"rows.m.lse_c": 0.5}))
    plot_history(h, ["rows.m.lse_c", "rows.m.not_reported"], tmp_path / "reports/history.png")
    assert (tmp_path / "reports/history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _project(tmp_path, report=REPORT_V1):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"history": {"path": "runs/h/history.parquet"},
                                                          "train_generator": {"method": "stabilized"}}))
    lock = {"schema": "2.0", "stages": {"sample_corpus": {
        "cmd": "python -m stages.sample_corpus",
        "outs": [{"path": "data/sample_corpus", "hash": "md5", "md5": "c1.dir"},
                 {"path": "reports/provenance/sample_corpus.json", "hash": "md5", "md5": "t1"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    (tmp_path / "reports").mkdir(exist_ok=True)
    (tmp_path / "reports/metrics.json").write_text(json.dumps(report))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "one"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)
    return tmp_path


def test_record_run_appends_rows_to_the_params_history_path(tmp_path):
    project = _project(tmp_path)
    row = record_run(project, "nightly", True, "first run")
    path = project / "runs/h/history.parquet"
    assert path.exists()
    assert row["kind"] == "nightly" and row["accepted"] is True and row["reason"] == "first run"
    assert len(row["git_rev"]) == 40 and row["git_dirty"] is False and len(row["run_id"]) == 32
    assert row["metric:rows.stabilized.lse_c"] == 1.5 and row["time"].tzinfo is not None
    assert row["data_hash"] and len(row["params_hash"]) == 64
    assert row["machine"] == machine_label(current_machine()) and "[" in row["machine"]  # no provenance yet

    # new metric in the second run, a changed params file, a manual unjudged run
    report = json.loads(json.dumps(REPORT_V1))
    report["rows"]["stabilized"]["vtcs_b"] = 0.25
    (project / "reports/metrics.json").write_text(json.dumps(report))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["seed"] = 7
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    row2 = record_run(project, "manual", None, run_id="my-run")
    assert row2["git_dirty"] is True and row2["params_hash"] != row["params_hash"]
    assert row2["data_hash"] == row["data_hash"]

    h = load_history(path)
    assert h["run_id"].tolist() == [row["run_id"], "my-run"]
    assert h["metric:rows.stabilized.vtcs_b"].isna().tolist() == [True, False]
    assert h["accepted"].isna().tolist() == [False, True]
    assert last_accepted(path)["run_id"] == row["run_id"]

    # same params content in another key order: same params hash
    reordered = dict(reversed(list(params.items())))
    (project / "params.yaml").write_text(yaml.safe_dump(reordered, sort_keys=False))
    assert record_run(project, "manual", None)["params_hash"] == row2["params_hash"]


def test_record_run_takes_the_machine_from_the_training_stage_provenance(tmp_path):
    project = _project(tmp_path)
    machine = {"arch": "x86_64", "model": "CPU T", "kernel_flags": ["avx2"], "gpu": "NVIDIA H100"}
    (project / "reports/provenance").mkdir(parents=True)
    (project / "reports/provenance/train_generator.json").write_text(json.dumps({"machine": machine}))
    assert record_run(project, "manual", None)["machine"] == "CPU T [avx2] + NVIDIA H100"
    # on a cluster the rank-0 worker of the last attempt trained the delivered model, not the stage's process
    worker = {"arch": "x86_64", "model": "CPU W", "kernel_flags": ["avx512f"], "gpu": "NVIDIA H200"}
    runs = [{"run": "g-1", "attempts": [{"from_step": 0, "workers": [{"rank": 1, "host": "n2", "machine": machine},
                                                                     {"rank": 0, "host": "n1", "machine": worker}]}]}]
    (project / "reports/provenance/train_generator.json").write_text(
        json.dumps({"machine": machine, "training_workers": runs}))
    assert record_run(project, "manual", None)["machine"] == "CPU W [avx512f] + NVIDIA H200"


def test_record_run_without_a_report_records_no_metrics(tmp_path):
    project = _project(tmp_path)
    (project / "reports/metrics.json").unlink()
    row = record_run(project, "pipeline", False, "evaluate failed")
    assert json.loads(row["metrics_json"]) == {} and not any(k.startswith("metric:") for k in row)


def test_record_run_with_metrics_path_none_ignores_an_existing_report(tmp_path):
    # A run that failed before `evaluate`: the report on disk is an older run's, not this one's.
    project = _project(tmp_path)
    row = record_run(project, "pipeline", None, "stage train_generator failed", metrics_path=None)
    assert json.loads(row["metrics_json"]) == {} and not any(k.startswith("metric:") for k in row)


def test_cli_records_and_shows_the_trend(tmp_path):
    project = _project(tmp_path)
    cli = [sys.executable, "-m", "lipforge.cli", "history", "-C", str(project)]
    empty = subprocess.run(cli, capture_output=True, text=True)
    assert empty.returncode == 0 and "no runs recorded" in empty.stdout
    rec = subprocess.run([*cli, "record", "--kind", "manual", "--rejected", "--reason", "ssim fell"],
                         capture_output=True, text=True)
    assert rec.returncode == 0, rec.stderr
    assert "recorded manual run" in rec.stdout
    shown = subprocess.run(cli, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    header, line = shown.stdout.splitlines()[:2]
    assert header.split() == ["time", "kind", "rev", "accepted", "lse_c", "lse_d", "ssim",
                              "mouth_opening_corr_pooled", "machine"]
    # the CLI process may not have imported torch, so it may not name the GPU this test process sees
    cpu_label = machine_label({**current_machine(), "gpu": None})
    assert cpu_label in line
    assert line[:line.index(cpu_label)].split()[2:] == ["manual", line.split()[3], "no", "1.5", "9.0", "0.8", "-"]
    assert (project / "reports/history.png").stat().st_size > 0
    assert load_history(project / "runs/h/history.parquet")["reason"].tolist() == ["ssim fell"]
