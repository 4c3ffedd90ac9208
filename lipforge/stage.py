"""What every stage entry point shares: load params.yaml once, turn user errors into one line and exit 2, record
the run's provenance."""
from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from lipforge.cpu_allocator import keep_freed_memory
from lipforge.dvclock import locked_outputs
from lipforge.gitinfo import commit_and_dirty
from lipforge.parallel import clusters_used, forget_clusters
from lipforge.params import Params, ParamsError, load_params
from lipforge.provenance import (PROVENANCE_DIR, build_record, current_host, current_machine,
                                 forget_training_workers, package_versions, provenance_path, stage_name,
                                 training_workers, write_record)


class StageError(RuntimeError):
    """An input problem the user can act on (missing upstream output, bad corpus root...)."""


def stage_main(run: Callable[[Params], dict], params_path: str = "params.yaml", name: str | None = None,
               provenance_dir: Path = PROVENANCE_DIR) -> None:
    """Run a stage; after a successful run write its provenance to <provenance_dir>/<name>.json.

    `name` defaults to the stage module's name, "<module>@<argv[1]>" for foreach stages (see
    `lipforge.provenance.stage_name`); dvc.yaml declares the same file as the stage's output."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = name or stage_name(spec.name if spec else None, sys.argv)
    started_at = datetime.now(timezone.utc)
    t0 = time.monotonic()
    # a process may run several stages (tests, a flow): this record names only this stage's clusters and workers
    forget_clusters()
    forget_training_workers()
    # speed only: this process's tensors (G_S's reference generation, evaluation) reuse freed memory
    keep_freed_memory()
    try:
        params = load_params(params_path)
        run(params)
    except (ParamsError, StageError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    commit, dirty = commit_and_dirty(".", locked_outputs("."))
    record = build_record(name, os.environ.get("DVC_STAGE"), commit, dirty, current_host(), package_versions(),
                          started_at, time.monotonic() - t0, clusters_used(), current_machine(),
                          training_workers())
    write_record(provenance_path(name, provenance_dir), record)


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
