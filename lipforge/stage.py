"""What every stage entry point shares: load params.yaml once, turn user errors into one line and exit 2."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from lipforge.params import Params, ParamsError, load_params


class StageError(RuntimeError):
    """An input problem the user can act on (missing upstream output, bad corpus root...)."""


def stage_main(run: Callable[[Params], dict], params_path: str = "params.yaml") -> None:
    try:
        params = load_params(params_path)
        run(params)
    except (ParamsError, StageError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def read_manifest(path: str | Path, required_columns: tuple[str, ...]) -> pd.DataFrame:
    """The manifest a per-clip stage reads, sorted by clip id; missing file/columns are StageErrors."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path} not found; run the manifest stage first (`dvc repro manifest`)")
    df = pd.read_parquet(path)
    missing = [c for c in required_columns if c not in df.columns]
    if missing:
        raise StageError(f"{path} lacks columns {', '.join(missing)}; re-run the manifest stage")
    if df["clip_id"].duplicated().any():
        dup = df.loc[df["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise StageError(f"{path}: clip_id {dup!r} appears twice; clip ids must be unique")
    return df.sort_values("clip_id").reset_index(drop=True)
