"""dvc.yaml declares every file of this repo that a stage's code imports, so editing one re-runs the stage."""
import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lipforge", "models", "stages")


def module_file(name: str) -> Path | None:
    """Repo file of a dotted module name (lipforge.train.data -> lipforge/train/data.py), None if not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """Repo files imported anywhere in `path` (function-level imports included), with their packages' __init__."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]  # `from pkg import module`
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]))
                if f is not None:
                    found.add(f)
    return found


def import_closure(entry: Path) -> set[Path]:
    seen, todo = set(), [entry]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += imported_files(f)
    return seen


def stage_entries() -> dict[str, tuple[Path, list[str]]]:
    """stage name -> (its module file, its declared deps), from dvc.yaml (foreach stages once, by their `do`)."""
    out = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        module = body["cmd"].split()[2]  # "python -m stages.<name> [args]"
        out[name] = (module_file(module), [d for d in body.get("deps", []) if "${" not in d])
    return out


def covered(rel: str, deps: list[str]) -> bool:
    """Is repo-relative file `rel` a dep, or inside a dep folder?"""
    return any(rel == d.rstrip("/") or rel.startswith(d.rstrip("/") + "/") for d in deps)


# Imported for types, progress output, errors and provenance only, or (cpu_allocator) for speed only, its
# arithmetic checked unchanged by benchmarks/allocator.py: editing them never changes an output.
NOT_OUTPUT_AFFECTING = {"lipforge/__init__.py", "stages/__init__.py", "models/__init__.py", "lipforge/params.py",
                        "lipforge/stage.py", "lipforge/progress.py", "lipforge/provenance.py", "lipforge/gitinfo.py",
                        "lipforge/hashing.py", "lipforge/parallel.py", "lipforge/dvclock.py", "lipforge/cache.py",
                        "lipforge/cpu_allocator.py"}


@pytest.mark.parametrize("stage", sorted(stage_entries()))
def test_every_imported_repo_file_is_a_dep(stage):
    entry, deps = stage_entries()[stage]
    assert entry is not None, f"{stage}: its cmd does not name a module of this repo"
    imported = {p.relative_to(ROOT).as_posix() for p in import_closure(entry)}
    missing = sorted(f for f in imported - NOT_OUTPUT_AFFECTING if not covered(f, deps))
    assert not missing, f"dvc.yaml stage {stage} imports {missing} but does not list them (or a folder) under deps"


def test_bytecode_caches_do_not_change_a_code_dependency(tmp_path):
    """A `__pycache__` that an interpreter writes into lipforge/ (one without PYTHONDONTWRITEBYTECODE, a test's
    subprocess) must not make the committed dvc.lock's code deps look modified: .dvcignore leaves them out."""
    import shutil

    from tests.pipeline_project import copy_repo, dvc

    copy_repo(tmp_path)
    shutil.copy2(ROOT / "dvc.lock", tmp_path / "dvc.lock")
    cache = tmp_path / "lipforge/face/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "crop.cpython-311.pyc").write_bytes(b"not code")
    (tmp_path / "lipforge/face/stray.pyc").write_bytes(b"not code either")
    status = dvc(tmp_path, "status", "face_crop")
    assert "lipforge/face" not in status, status
