"""`lipforge lineage` on a real tiny DVC project: raw -> prep -> feat@lo/feat@hi -> score -> reports/metrics.json.

The stages run through `lipforge.stage.stage_main` (as `python -m <module> [item]`, like the real ones), so they
also write their provenance files. Changing one param and re-running must give a `--diff` that names exactly
that param and exactly the stages downstream of it, from lineage JSON files and from git revisions alike.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

DVC_YAML = {"stages": {
    "prep": {"cmd": "python -m prep", "deps": ["raw", "prep.py"], "params": ["seed"],
             "outs": ["data/prep.txt", {"reports/provenance/prep.json": {"cache": False}}]},
    "feat": {"foreach": {"lo": 1, "hi": 2}, "do": {
        "cmd": "python -m feat ${key}", "deps": ["data/prep.txt", "feat.py"], "params": ["mel.fmin"],
        "outs": ["data/feat/${key}.txt", {"reports/provenance/feat@${key}.json": {"cache": False}}]}},
    "score": {"cmd": "python -m score", "deps": ["data/feat", "score.py"], "params": ["evaluate.vshift"],
              "outs": [{"reports/provenance/score.json": {"cache": False}}],
              "metrics": [{"reports/metrics.json": {"cache": False}}]},
}}

SCRIPTS = {
    "prep.py": '''
from pathlib import Path
from lipforge.stage import stage_main

def run(p):
    text = Path("raw/corpus.txt").read_text()
    Path("data").mkdir(exist_ok=True)
    Path("data/prep.txt").write_text(f"{p.seed}:{text.upper()}")

if __name__ == "__main__":
    stage_main(run)
''',
    "feat.py": '''
import sys
from pathlib import Path
from lipforge.stage import stage_main

def run(p, key):
    scale = {"lo": 1, "hi": 2}[key]
    out = Path("data/feat") / f"{key}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(str(len(Path("data/prep.txt").read_text()) * scale * p.mel.fmin))

if __name__ == "__main__":
    stage_main(lambda p: run(p, sys.argv[1]))
''',
    "score.py": '''
import json
from pathlib import Path
from lipforge.stage import stage_main

def run(p):
    total = sum(float(f.read_text()) for f in sorted(Path("data/feat").glob("*.txt")))
    Path("reports").mkdir(exist_ok=True)
    report = {"score": total / p.evaluate.vshift, "backends": {"scorer": {"name": "sum", "sha256": "s" * 64}}}
    Path("reports/metrics.json").write_text(json.dumps(report))

if __name__ == "__main__":
    stage_main(run)
''',
}


def _env() -> dict:
    # PYTHONPATH: the stages and the CLI import this checkout's lipforge, whatever the venv's install points at.
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1",
                PYTHONPATH=str(REPO), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                GIT_COMMITTER_EMAIL="t@t")


def _run(cwd: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _lipforge(cwd: Path, *args: str) -> str:
    return _run(cwd, sys.executable, "-m", "lipforge.cli", *args)


def _commit(cwd: Path, message: str) -> str:
    _run(cwd, "git", "add", "-A")
    _run(cwd, "git", "commit", "-qm", message)
    return _run(cwd, "git", "rev-parse", "HEAD").strip()


def _set_fmin(project: Path, value: int) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["mel"]["fmin"] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_lineage_and_diff_on_a_tiny_dvc_project(tmp_path):
    project = tmp_path / "proj"
    (project / "raw").mkdir(parents=True)
    (project / "raw/corpus.txt").write_text("hello lip sync\n")
    (project / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (project / "params.yaml").write_text(yaml.safe_dump({"seed": 1, "mel": {"fmin": 55}, "evaluate": {"vshift": 15}},
                                                        sort_keys=False))
    for name, text in SCRIPTS.items():
        (project / name).write_text(text)
    _run(project, "git", "init", "-q")
    _run(project, "dvc", "init", "-q")
    rev1_code = _commit(project, "tiny pipeline")

    out = _run(project, "dvc", "repro")
    for stage in ("prep", "feat@lo", "feat@hi", "score"):
        assert f"'{stage}'" in out, out
    rev1 = _commit(project, "run 1")
    assert "Data and pipelines are up to date" in _run(project, "dvc", "repro")  # provenance outs keep it a no-op

    prov = json.loads((project / "reports/provenance/feat@lo.json").read_text())
    assert prov["stage"] == "feat@lo" and prov["dvc_stage"] == "feat@lo"  # name derived from `-m feat lo`
    assert prov["git_dirty"] is False and len(prov["git_commit"]) == 40

    text = _lipforge(project, "lineage", "reports/metrics.json")
    assert "made by stage score" in text and "raw corpus read by: prep" in text
    assert "mel.fmin: 55" in text and "data/feat  <- feat@lo, feat@hi" in text
    assert '"sha256": "' + "s" * 64 in text  # score's report names its backend
    lineage1 = json.loads(_lipforge(project, "lineage", "--json"))
    assert [s["name"] for s in lineage1["stages"]][0] == "prep" and lineage1["stage"] == "score"
    assert all(s["provenance"]["matches_lock"] is True for s in lineage1["stages"])
    assert lineage1["stages"][0]["provenance"]["stage"] == "prep"
    (tmp_path / "a.json").write_text(json.dumps(lineage1))
    _lipforge(project, "lineage", "--mermaid")
    assert "graph TD" in (project / "reports/lineage.md").read_text()

    _set_fmin(project, 80)
    rev2_code = _commit(project, "fmin 80")
    out = _run(project, "dvc", "repro")
    assert "'prep'" not in out.replace("Stage 'prep' didn't change", "")
    rev2 = _commit(project, "run 2")
    (tmp_path / "b.json").write_text(_lipforge(project, "lineage", "--json"))

    for a, b in ((str(tmp_path / "a.json"), str(tmp_path / "b.json")), (rev1, rev2)):
        diff = json.loads(_lipforge(project, "lineage", "--diff", a, b, "--json"))
        assert set(diff["stages"]) == {"feat@lo", "feat@hi", "score"}, diff["stages"].keys()
        params_changed = {name: d.get("params") for name, d in diff["stages"].items()}
        assert params_changed == {"feat@lo": {"mel.fmin": [55, 80]}, "feat@hi": {"mel.fmin": [55, 80]},
                                  "score": None}
        assert set(diff["stages"]["score"]["deps"]) == {"data/feat"}
        assert set(diff["stages"]["score"]["outs"]) == {"reports/metrics.json"}
        # the re-run stages ran at the params commit; rewriting their committed outs did not make them dirty
        assert diff["stages"]["feat@lo"]["provenance"] == {"git_commit": [rev1_code, rev2_code]}
        assert diff["added"] == diff["removed"] == [] and diff["without_reports"] == []
    text = _lipforge(project, "lineage", "--diff", rev1, rev2)
    assert "params mel.fmin: 55 -> 80" in text and "stage prep" not in text
