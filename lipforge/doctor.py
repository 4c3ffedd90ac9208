"""`lipforge doctor`: which backends and weight files this machine has, and what `auto` picks (backends, precision)."""
from __future__ import annotations

import shutil

from rich.console import Console
from rich.table import Table

from lipforge.weights import KNOWN_WEIGHTS, locate, search_dirs


def backend_rows() -> list[dict]:
    from lipforge.align import AlignError, resolve_backend
    from lipforge.align.backends import available_backends as align_backends
    from lipforge.face import available_backends as face_backends

    rows = [{"component": "face detector", **b} for b in face_backends()]
    try:
        align_auto = resolve_backend("auto")
    except AlignError:
        align_auto = None
    rows += [{"component": "aligner", **b, "auto": b["name"] == align_auto} for b in align_backends()]
    return rows


def tool_rows() -> list[dict]:
    rows = []
    for tool, why in (("dvc", "pipeline"), ("git", "lineage (commit of each run)")):
        path = shutil.which(tool)
        rows.append({"component": "tool", "name": tool, "available": path is not None,
                     "detail": path or f"not on PATH ({why})"})
    return rows


def weight_rows() -> list[dict]:
    rows = []
    for w in KNOWN_WEIGHTS:
        path = locate(w.filename)
        rows.append({"component": "weights", "name": w.name, "available": path is not None,
                     "detail": str(path) if path else f"{w.filename} absent -> {w.fallback}", "used_by": w.used_by})
    return rows


def precision_rows() -> list[dict]:
    """What a generator's `precision: auto` resolves to on this machine's CPU and, if there is one, its GPU."""
    import torch

    from lipforge.train.precision import native_bf16, resolve_precision

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [{"component": "precision", "name": f"bfloat16 on {d.type}", "available": native_bf16(d),
             "detail": f"precision auto -> {resolve_precision('auto', d)}"} for d in devices]


def run_doctor() -> int:
    console = Console()
    table = Table(title="lipforge doctor", show_lines=False)
    for col in ("component", "name", "status", "detail"):
        table.add_column(col, overflow="fold")
    for r in backend_rows() + tool_rows() + weight_rows() + precision_rows():
        status = "[green]present[/]" if r["available"] else "[yellow]absent[/]"
        if r.get("auto"):
            status += " [bold](auto)[/]"
        table.add_row(r["component"], r["name"], status, r.get("detail", ""))
    console.print(table)
    console.print("weight search dirs: " + ", ".join(str(d) for d in search_dirs()))
    return 0
