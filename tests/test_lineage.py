"""Lineage: walking a hand-made dvc.lock, collecting backends from reports, diffing two lineages."""
import json

import pytest
import yaml

from lipforge.dvclock import (LockError, data_hash, entry_hash, flatten, parse_lock, producers, source_stages,
                              stage_of, upstream)
from lipforge.lineage import (ABSENT, build_lineage, collect_backends, diff_lineage, format_diff, format_lineage,
                              mermaid)


def _entry(path, md5):
    return {"path": path, "hash": "md5", "md5": md5, "size": 1}


def make_lock(fmin=55, corpus="c1", feat="f1", score="s1", report="r1") -> dict:
    """corpus (raw) -> prep -> feat@lo / feat@hi -> score -> reports/metrics.json; `other` hangs off prep only."""
    return {"schema": "2.0", "stages": {
        "prep": {"cmd": "python prep.py", "deps": [_entry("raw", f"{corpus}.dir"), _entry("prep.py", "p0")],
                 "params": {"params.yaml": {"seed": 1}},
                 "outs": [_entry("data/prep.txt", f"prep-{corpus}"), _entry("reports/provenance/prep.json", "t1")]},
        "feat@lo": {"cmd": "python feat.py lo", "deps": [_entry("data/prep.txt", f"prep-{corpus}")],
                    "params": {"params.yaml": {"mel.fmin": fmin}},
                    "outs": [_entry("data/feat/lo.txt", f"lo-{feat}"),
                             _entry("reports/provenance/feat@lo.json", "t2")]},
        "feat@hi": {"cmd": "python feat.py hi", "deps": [_entry("data/prep.txt", f"prep-{corpus}")],
                    "params": {"params.yaml": {"mel.fmin": fmin}},
                    "outs": [_entry("data/feat/hi.txt", f"hi-{feat}")]},
        "other": {"cmd": "python other.py", "deps": [_entry("data/prep.txt", f"prep-{corpus}")],
                  "outs": [_entry("data/other.txt", "o1")]},
        "score": {"cmd": "python score.py", "deps": [_entry("data/feat", f"{feat}.dir"), _entry("score.py", "sc")],
                  "params": {"params.yaml": {"evaluate": {"vshift": 15, "split": "test"}}},
                  "outs": [_entry("reports/metrics.json", score), _entry("reports/score.json", report)]},
    }}


@pytest.fixture
def stages():
    return parse_lock(yaml.safe_dump(make_lock(), sort_keys=False))


def test_entry_hash_reads_dvc3_dvc2_and_cloud_entries():
    assert entry_hash({"path": "a", "hash": "md5", "md5": "x"}) == "x"
    assert entry_hash({"path": "a", "md5": "y"}) == "y"
    assert entry_hash({"path": "s3://b/a", "etag": "z"}) == "z"
    assert entry_hash({"path": "a"}) is None


def test_flatten_nests_dicts_into_dotted_keys_and_keeps_lists():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {}}) == {"a.b": 1, "a.c": [1, 2], "d": "x", "e": {}}


def test_parse_lock_rejects_garbage_with_the_file_name():
    with pytest.raises(LockError, match="dvc.lock: not valid YAML"):
        parse_lock("stages: [unclosed")
    with pytest.raises(LockError, match="expected a mapping with `stages`"):
        parse_lock("- a\n- b\n")


def test_producers_match_files_inside_a_dir_dep_and_dir_outs_holding_a_file(stages):
    assert producers(stages, "data/feat") == ["feat@lo", "feat@hi"]  # dir dep holds two foreach outs
    assert producers(stages, "data/prep.txt") == ["prep"]
    assert producers(stages, "./data/feat/lo.txt") == ["feat@lo"]
    assert producers(stages, "raw") == []
    assert stage_of(stages, "reports/metrics.json") == "score"
    with pytest.raises(LockError, match="no stage in dvc.lock outputs reports/x.json"):
        stage_of(stages, "reports/x.json")


def test_upstream_lists_every_ancestor_once_producers_first_and_skips_side_branches(stages):
    order = upstream(stages, "score")
    assert order[0] == "prep" and order[-1] == "score"
    assert set(order) == {"prep", "feat@lo", "feat@hi", "score"}  # `other` does not feed score
    assert len(order) == len(set(order))


def test_source_stages_and_data_hash_depend_on_the_raw_corpus_only():
    stages = parse_lock(yaml.safe_dump(make_lock(), sort_keys=False))
    assert source_stages(stages) == ["prep"]
    same_corpus = parse_lock(yaml.safe_dump(make_lock(fmin=80, feat="f2", score="s2"), sort_keys=False))
    new_corpus = parse_lock(yaml.safe_dump(make_lock(corpus="c2"), sort_keys=False))
    assert data_hash(stages) == data_hash(same_corpus)
    assert data_hash(stages) != data_hash(new_corpus)
    # the provenance file of the source stage changes on every run: not part of the data hash
    lock = make_lock()
    lock["stages"]["prep"]["outs"][1]["md5"] = "t-later"
    assert data_hash(parse_lock(yaml.safe_dump(lock, sort_keys=False))) == data_hash(stages)


def test_collect_backends_finds_provenance_keys_at_any_depth():
    face_crop = {"backend": "dlib", "weights": [{"file": "sp68.dat", "sha256": "ab"}], "clips_ok": 3}
    assert collect_backends(face_crop) == {"backend": "dlib", "weights": [{"file": "sp68.dat", "sha256": "ab"}]}
    align = {"backend_requested": "auto", "backend_resolved": "pocketsphinx", "gate": "pass"}
    assert collect_backends(align) == {"backend_requested": "auto", "backend_resolved": "pocketsphinx"}
    generator = {"steps": 6, "model_sha256": "m1",
                 "perceptual": {"network": "vgg19-random-init", "weights": None, "seed": 7},
                 "landmarks": {"backend": "dlib", "weights": []}, "final": {"total": 1.0}}
    assert collect_backends(generator) == {
        "model_sha256": "m1",
        "perceptual": {"network": "vgg19-random-init", "weights": None, "seed": 7},  # kept whole: names the net
        "landmarks": {"backend": "dlib", "weights": []},
    }
    metrics = {"rows": {"x": {"ssim": 0.5}}, "backends": {"lse_judge": {"sha256": "j"}}}
    assert collect_backends(metrics) == {"backends": {"lse_judge": {"sha256": "j"}}}
    assert collect_backends({"runs": [{"x": 1}, {"model_sha256": "q"}]}) == {"runs.1.model_sha256": "q"}


def _files(**overrides):
    files = {
        "reports/provenance/prep.json": json.dumps({"stage": "prep", "git_commit": "abc", "git_dirty": False,
                                                    "host": "h1", "versions": {"ray": "2.60.0"},
                                                    "started_at": "2026-01-01T00:00:00+00:00", "seconds": 1.0,
                                                    "ray_clusters": [{"address": "local", "gcs_address": "1:1",
                                                                      "ray_version": "2.60.0", "nodes": 1,
                                                                      "cpus": 2.0, "gpus": 0.0}]}),
        "reports/score.json": json.dumps({"backend": "dlib", "lse": 1.0}),
    }
    files.update(overrides)
    return files.get


def test_build_lineage_records_params_hashes_provenance_and_backends(stages):
    lin = build_lineage(stages, "reports/metrics.json", _files())
    assert [s["name"] for s in lin["stages"]][-1] == "score" and lin["stage"] == "score"
    assert lin["target_md5"] == "s1" and lin["source_stages"] == ["prep"]
    by = {s["name"]: s for s in lin["stages"]}
    assert by["score"]["params"] == {"evaluate.vshift": 15, "evaluate.split": "test"}
    assert by["feat@lo"]["params"] == {"mel.fmin": 55}
    assert by["score"]["deps"][0] == {"path": "data/feat", "md5": "f1.dir", "from": ["feat@lo", "feat@hi"]}
    assert by["prep"]["provenance"]["git_commit"] == "abc"
    assert by["prep"]["provenance"]["matches_lock"] is False  # the lock records md5 "t1", not this file's
    assert "warning: this provenance file is not the one dvc.lock records" in format_lineage(lin)
    assert by["prep"]["provenance"]["ray_clusters"][0]["cpus"] == 2.0
    assert by["feat@hi"]["provenance"] is None  # declares no provenance out and has no file
    assert by["score"]["backends"] == {"reports/score.json": {"backend": "dlib"}}
    assert {s["path"] for s in lin["sources"]} == {"raw", "prep.py", "score.py"}
    text = format_lineage(lin)
    assert "stage feat@lo" in text and "mel.fmin: 55" in text and "f1.dir  data/feat  <- feat@lo, feat@hi" in text
    assert "git abc on h1" in text and "local (ray 2.60.0, 1 node(s), 2 CPU, 0 GPU)" in text


def test_diff_names_the_changed_param_and_only_the_stages_downstream_of_it(stages):
    old = build_lineage(stages, "reports/metrics.json", _files())
    changed = parse_lock(yaml.safe_dump(make_lock(fmin=80, feat="f2", score="s2"), sort_keys=False))
    # a re-run rewrites the provenance files (new timestamps, same commit): that alone is no difference
    new_prov = json.loads(_files()("reports/provenance/prep.json"))
    new_prov.update(started_at="2026-02-02T00:00:00+00:00", seconds=9.0)
    new_prov["ray_clusters"][0]["gcs_address"] = "2:2"
    new = build_lineage(changed, "reports/metrics.json",
                        _files(**{"reports/provenance/prep.json": json.dumps(new_prov)}))
    diff = diff_lineage(old, new)
    assert set(diff["stages"]) == {"feat@lo", "feat@hi", "score"}
    assert diff["stages"]["feat@lo"]["params"] == {"mel.fmin": [55, 80]}
    assert diff["stages"]["feat@lo"]["outs"] == {"data/feat/lo.txt": ["lo-f1", "lo-f2"]}
    assert "params" not in diff["stages"]["score"]
    assert diff["stages"]["score"]["deps"] == {"data/feat": ["f1.dir", "f2.dir"]}
    assert diff["stages"]["score"]["outs"] == {"reports/metrics.json": ["s1", "s2"]}
    assert diff["added"] == diff["removed"] == []
    text = format_diff(diff)
    assert "params mel.fmin: 55 -> 80" in text and "stage prep" not in text


def test_diff_reports_cmd_backend_and_cluster_changes_and_absent_keys(stages):
    old = build_lineage(stages, "reports/metrics.json", _files())
    lock = make_lock()
    lock["stages"]["score"]["cmd"] = "python score.py --fast"
    lock["stages"]["score"]["params"]["params.yaml"]["evaluate"]["n_videos"] = 2
    prov = json.loads(_files()("reports/provenance/prep.json"))
    prov["ray_clusters"] = [{"address": "ray://head:10001", "ray_version": "2.60.0", "nodes": 4, "cpus": 64.0,
                             "gpus": 8.0}]
    new = build_lineage(parse_lock(yaml.safe_dump(lock, sort_keys=False)), "reports/metrics.json",
                        _files(**{"reports/score.json": json.dumps({"backend": "face_alignment"}),
                                  "reports/provenance/prep.json": json.dumps(prov)}))
    diff = diff_lineage(old, new, "v1", "v2")
    assert set(diff["stages"]) == {"prep", "score"}
    assert diff["stages"]["score"]["cmd"] == ["python score.py", "python score.py --fast"]
    assert diff["stages"]["score"]["params"] == {"evaluate.n_videos": [ABSENT, 2]}
    assert diff["stages"]["score"]["backends"] == {"reports/score.json:backend": ["dlib", "face_alignment"]}
    assert list(diff["stages"]["prep"]) == ["provenance"]
    assert list(diff["stages"]["prep"]["provenance"]) == ["ray_clusters"]
    assert "lineage diff v1 -> v2" in format_diff(diff)


def test_lineage_names_the_cpu_and_a_diff_reports_a_change_of_machine(stages):
    prov = json.loads(_files()("reports/provenance/prep.json"))
    prov["machine"] = {"arch": "x86_64", "model": "CPU A", "kernel_flags": ["avx2"], "torch_cpu_capability": "AVX2",
                       "gpu": None}
    old = build_lineage(stages, "reports/metrics.json", _files(**{"reports/provenance/prep.json": json.dumps(prov)}))
    assert "git abc on h1 (CPU A, torch AVX2) at" in format_lineage(old)
    prov["machine"] = {**prov["machine"], "model": "CPU B", "torch_cpu_capability": "AVX512"}
    new = build_lineage(stages, "reports/metrics.json", _files(**{"reports/provenance/prep.json": json.dumps(prov)}))
    diff = diff_lineage(old, new)
    assert list(diff["stages"]) == ["prep"] and list(diff["stages"]["prep"]["provenance"]) == ["machine"]
    # a record written before provenance named the machine reads as absent, not as a crash
    assert "git abc on h1 at" in format_lineage(build_lineage(stages, "reports/metrics.json", _files()))


def test_lineage_names_the_training_workers_and_a_diff_reports_a_change_of_their_machine(stages):
    prov = json.loads(_files()("reports/provenance/prep.json"))
    cpu = {"arch": "x86_64", "model": "CPU A", "kernel_flags": ["avx2"], "torch_cpu_capability": "AVX2", "gpu": None}
    gpu_node = {**cpu, "model": "CPU G", "gpu": "NVIDIA H100"}
    prov["training_workers"] = [{"run": "gen-1", "attempts": [
        {"from_step": 0, "workers": [{"rank": 0, "host": "n1", "machine": cpu}, {"rank": 1, "host": "n2", "machine": cpu}]},
        {"from_step": 400, "workers": [{"rank": 0, "host": "n3", "machine": gpu_node}]}]}]
    old = build_lineage(stages, "reports/metrics.json", _files(**{"reports/provenance/prep.json": json.dumps(prov)}))
    text = format_lineage(old)
    assert "  trained from step 0: rank 0 n1 (CPU A, torch AVX2); rank 1 n2 (CPU A, torch AVX2)" in text
    assert "  trained from step 400: rank 0 n3 (CPU G, torch AVX2, NVIDIA H100)" in text
    # other hosts of the same machine type, or the same machines under other ranks, are no change
    prov["training_workers"][0]["attempts"][1]["workers"][0]["host"] = "n9"
    prov["training_workers"][0]["attempts"].reverse()
    same = build_lineage(stages, "reports/metrics.json", _files(**{"reports/provenance/prep.json": json.dumps(prov)}))
    assert diff_lineage(old, same)["stages"] == {}
    # nor is a record from before workers were kept
    older = build_lineage(stages, "reports/metrics.json", _files())
    assert diff_lineage(older, old)["stages"] == {}
    prov["training_workers"][0]["attempts"].reverse()
    prov["training_workers"][0]["attempts"][1]["workers"][0]["machine"] = cpu
    new = build_lineage(stages, "reports/metrics.json", _files(**{"reports/provenance/prep.json": json.dumps(prov)}))
    diff = diff_lineage(old, new)
    assert list(diff["stages"]["prep"]["provenance"]) == ["training_worker_machines"]


def test_diff_of_a_lineage_with_itself_is_empty_and_says_so(stages):
    lin = build_lineage(stages, "reports/metrics.json", _files())
    diff = diff_lineage(lin, json.loads(json.dumps(lin)))  # also survives a JSON round trip
    assert diff["stages"] == {} and diff["without_reports"] == []
    assert "no differences" in format_diff(diff)
    blind = build_lineage(stages, "reports/metrics.json", lambda path: None)
    assert diff_lineage(blind, lin, "rev1", "now")["without_reports"] == ["rev1"]


def test_mermaid_has_one_node_per_stage_and_an_edge_per_linking_path(stages):
    lin = build_lineage(stages, "reports/metrics.json", _files())
    graph = mermaid(lin)
    assert graph.startswith("graph TD")
    names = [s["name"] for s in lin["stages"]]
    for i, name in enumerate(names):
        assert f's{i}["{name}<br/>' in graph
    ids = {n: f"s{i}" for i, n in enumerate(names)}
    assert f'{ids["feat@lo"]} -->|"data/feat"| {ids["score"]}' in graph
    assert f'{ids["prep"]} -->|"data/prep.txt"| {ids["feat@hi"]}' in graph
    assert "prep-c1" in graph  # prep's first out hash (not its provenance file)
    assert f"{ids['score']} --> target" in graph
    assert graph.count("-->|") == 4


def test_cli_errors_name_the_problem_and_exit_2(tmp_path, capsys):
    from lipforge.cli import main

    assert main(["lineage", "-C", str(tmp_path)]) == 2
    assert "dvc.lock not found; run `dvc repro` first" in capsys.readouterr().err
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(make_lock(), sort_keys=False))
    assert main(["lineage", "-C", str(tmp_path), "reports/other.json"]) == 2
    assert "no stage in dvc.lock outputs reports/other.json" in capsys.readouterr().err
    assert main(["lineage", "-C", str(tmp_path), "--diff", "nope.json", "HEAD"]) == 2
    assert "nope.json: neither a lineage JSON file nor a git revision" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert main(["lineage", "-C", str(tmp_path), "--diff", str(tmp_path / "bad.json"), "x"]) == 2
    assert "not a lineage file" in capsys.readouterr().err
    assert main(["lineage", "-C", str(tmp_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["stage"] == "score" and "is not on disk" in printed["target_note"]
