"""Run history: one parquet row per pipeline run (which code, params, data and metrics; accepted or not).

Flows call `record_run` after every run (kind "pipeline" or "nightly"), `lipforge history record` does it for a
plain `dvc repro` ("manual"); the nightly gate compares against `last_accepted`. Metrics are stored twice: as
JSON text (every numeric value of the report) and as one float column `metric:<dotted key>` each, so the table
can be filtered and plotted; a metric a new run adds becomes a new column, null in older rows.
"""
from __future__ import annotations

import fcntl
import json
import math
import uuid
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

from lipforge.dvclock import data_hash, output_paths, parse_lock
from lipforge.gitinfo import commit_and_dirty
from lipforge.hashing import obj_sha256
from lipforge.params import Params, load_params
from lipforge.provenance import current_machine, last_worker_machine, machine_label, provenance_path, read_record

KINDS = ("pipeline", "nightly", "manual")
METRIC_PREFIX = "metric:"
BASE_COLUMNS = {
    "time": "datetime64[us, UTC]",
    "run_id": "object",
    "kind": "object",
    "git_rev": "object",
    "git_dirty": "boolean",
    # The CPU (and GPU) the run trained on (`lipforge.provenance.machine_label`): on a CPU the same code, params
    # and data train different weights on different instruction sets, so a metric can move with the machine alone.
    "machine": "object",
    "params_hash": "object",
    "data_hash": "object",
    "accepted": "boolean",
    "reason": "object",
    "metrics_json": "object",
}


class HistoryError(ValueError):
    """A history request that cannot be served, phrased for the user."""


# ---- pure ------------------------------------------------------------------------------------------------

def flatten_metrics(report: dict) -> dict[str, float]:
    """Every finite numeric value of a report under its dotted key (`rows.stabilized.lse_c`); list items get
    their index as a key part. Booleans (gate flags), None, strings and NaN/inf (no order to gate on, and
    not valid JSON) are skipped."""
    out: dict[str, float] = {}

    def walk(value, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}.{i}" if key else str(i))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)

    walk(report, "")
    return out


def make_row(time: pd.Timestamp, run_id: str, kind: str, git_rev: str | None, git_dirty: bool | None,
             params_hash: str, data_hash: str | None, accepted: bool | None, reason: str,
             metrics: dict[str, float], machine: str | None = None) -> dict:
    if kind not in KINDS:
        raise HistoryError(f"run kind {kind!r} is not one of {', '.join(KINDS)}")
    if time.tzinfo is None:
        raise HistoryError("run time must be timezone-aware (UTC)")
    row = {"time": time.tz_convert("UTC"), "run_id": run_id, "kind": kind, "git_rev": git_rev,
           "git_dirty": git_dirty, "machine": machine, "params_hash": params_hash, "data_hash": data_hash,
           "accepted": accepted, "reason": reason, "metrics_json": json.dumps(metrics, sort_keys=True)}
    row.update({f"{METRIC_PREFIX}{k}": v for k, v in sorted(metrics.items())})
    return row


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """Base columns with their dtypes (missing ones added as null), metric columns as float, base columns first."""
    df = df.copy()
    for col, dtype in BASE_COLUMNS.items():
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=dtype if dtype != "object" else object, index=df.index)
        elif dtype.startswith("datetime"):
            df[col] = pd.to_datetime(df[col], utc=True).astype(dtype)
        elif dtype == "boolean":
            df[col] = df[col].astype("boolean")
        else:
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    metric_cols = sorted(c for c in df.columns if c.startswith(METRIC_PREFIX))
    for col in metric_cols:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    others = [c for c in df.columns if c not in BASE_COLUMNS and c not in metric_cols]
    return df[list(BASE_COLUMNS) + others + metric_cols]


def append(history: pd.DataFrame, row: dict) -> pd.DataFrame:
    """`history` with `row` added; columns only one side has are null on the other."""
    new = typed(pd.DataFrame([row]))
    if history.empty:
        return new
    return typed(pd.concat([typed(history), new], ignore_index=True))


def row_as_dict(row: pd.Series) -> dict:
    """One history row as plain Python values; metric columns that are null in this row are left out."""
    out = {}
    for key, value in row.items():
        if pd.isna(value):
            if key.startswith(METRIC_PREFIX):
                continue
            value = None
        elif hasattr(value, "item") and not isinstance(value, pd.Timestamp):
            value = value.item()
        out[key] = value
    return out


def latest_accepted(history: pd.DataFrame) -> dict | None:
    accepted = history[history["accepted"].fillna(False).astype(bool)]
    if accepted.empty:
        return None
    return row_as_dict(accepted.sort_values("time", kind="stable").iloc[-1])


def resolve_metric_key(key: str, method: str) -> str:
    """A nightly.gate key as a dotted metrics.json path: `{method}` is train_generator.method."""
    return key.replace("{method}", method)


def gated_metrics(params: Params) -> list[str]:
    """The dotted metric keys the nightly gate watches, `{method}` resolved to train_generator.method."""
    return [resolve_metric_key(key, params.train_generator.method) for key in params.nightly.gate]


def _short_names(keys: list[str]) -> dict[str, str]:
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _accepted_text(value) -> str:
    return "-" if pd.isna(value) else ("yes" if value else "no")


def trend_table(history: pd.DataFrame, gated: list[str]) -> pd.DataFrame:
    """One line per run, oldest first: time, kind, short git rev (`*`: uncommitted changes), accepted, the
    gated metrics (null where a run did not report one), the machine it ran on ("-": recorded without one)."""
    h = history.sort_values("time", kind="stable")
    table = pd.DataFrame({
        "time": h["time"].dt.strftime("%Y-%m-%d %H:%M"),
        "kind": h["kind"],
        "rev": [(r[:8] if isinstance(r, str) else "-") + ("*" if d is True else "")
                for r, d in zip(h["git_rev"], h["git_dirty"].astype(object))],
        "accepted": [_accepted_text(v) for v in h["accepted"].astype(object)],
    })
    for key, short in _short_names(gated).items():
        col = f"{METRIC_PREFIX}{key}"
        table[short] = h[col].round(4) if col in h.columns else float("nan")
    table["machine"] = h["machine"].fillna("-")   # last: the label holds spaces
    return table.reset_index(drop=True)


# ---- I/O ---------------------------------------------------------------------------------------------------

def history_path(project: Path, params: Params) -> Path:
    path = Path(params.history.path)
    return path if path.is_absolute() else project / path


def load_history(path: str | Path) -> pd.DataFrame:
    """The history table; an empty one with the base columns when no run was recorded yet."""
    path = Path(path)
    if not path.exists():
        return typed(pd.DataFrame())
    return typed(pd.read_parquet(path))


def last_accepted(path: str | Path) -> dict | None:
    """The newest accepted run as a dict (see `row_as_dict`), or None."""
    return latest_accepted(load_history(path))


@contextmanager
def _locked(path: Path):
    # A nightly flow and a manual `lipforge history record` may append at once: serialise the read-modify-write.
    lock = path.with_name(path.name + ".lock")
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def append_row(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        table = append(load_history(path), row)
        tmp = path.with_name(path.name + ".tmp")
        table.to_parquet(tmp, index=False)
        tmp.replace(path)


def training_machine(project: Path) -> dict:
    """The machine the generator trained on, as its stage's provenance recorded it: its rank-0 training worker's (on
    a cluster another node than the stage's), else the stage process's (records from before workers were kept);
    this machine's when the project has no such record (training never ran, or ran before one was kept)."""
    path = project / provenance_path("train_generator")
    record = read_record(path.read_text()) if path.is_file() else None
    return last_worker_machine(record) or (record or {}).get("machine") or current_machine()


def record_run(project: Path, kind: str, accepted: bool | None, reason: str = "", run_id: str | None = None,
               metrics_path: str | None = "reports/metrics.json") -> dict:
    """Append one row for the run whose outputs are in `project` to the history parquet (params `history.path`)
    and return it. A missing metrics report gives a row without metrics (a failed run is still history);
    `metrics_path=None` leaves metrics out on purpose (a run that failed before writing its own report)."""
    project = Path(project)
    params_file = project / "params.yaml"
    params = load_params(params_file)
    raw_params = yaml.safe_load(params_file.read_text()) or {}
    lock = project / "dvc.lock"
    stages = parse_lock(lock.read_text(), str(lock)) if lock.is_file() else None
    rev, dirty = commit_and_dirty(project, output_paths(stages) if stages else ())
    data = data_hash(stages) if stages else None
    report = project / metrics_path if metrics_path is not None else None
    metrics = flatten_metrics(json.loads(report.read_text())) if report is not None and report.is_file() else {}
    row = make_row(pd.Timestamp.now(tz="UTC"), run_id or uuid.uuid4().hex, kind, rev, dirty, obj_sha256(raw_params),
                   data, accepted, reason, metrics, machine_label(training_machine(project)))
    append_row(history_path(project, params), row)
    return row


def plot_history(history: pd.DataFrame, gated: list[str], path: Path) -> None:
    """The gated metrics over runs (oldest left): accepted runs as filled green dots, rejected as red crosses,
    runs no gate judged (manual) as hollow grey dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = history.sort_values("time", kind="stable").reset_index(drop=True)
    x = list(range(1, len(h) + 1))
    accepted = h["accepted"].astype(object)
    fig, axes = plt.subplots(len(gated), 1, figsize=(8, 2.2 * len(gated) + 0.6), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], gated):
        col = f"{METRIC_PREFIX}{key}"
        y = h[col] if col in h.columns else pd.Series([float("nan")] * len(h))
        ax.plot(x, y, color="0.7", linewidth=1, zorder=1)
        for mask, style in (
            ([a is True for a in accepted], dict(marker="o", color="tab:green", label="accepted", linestyle="none")),
            ([a is False for a in accepted], dict(marker="x", color="tab:red", label="rejected", linestyle="none")),
            ([a is None or a is pd.NA for a in accepted],
             dict(marker="o", markerfacecolor="none", color="0.5", label="not judged", linestyle="none")),
        ):
            xs = [xi for xi, m in zip(x, mask) if m]
            ax.plot(xs, [yi for yi, m in zip(y, mask) if m], zorder=2, **style)
        if y.isna().all():
            ax.text(0.5, 0.5, "not reported by any run", transform=ax.transAxes, ha="center", color="0.5")
        ax.set_title(key, fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("run (oldest to newest)")
    if len(x) <= 30:  # one tick per run while they stay readable
        axes[-1, 0].set_xticks(x)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
