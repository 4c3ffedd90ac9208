"""Incremental per-clip work inside a stage.

A stage's output folder keeps one entry per clip and a key file mapping clip id -> cache key, where the
key hashes the clip's input content, the stage's params and the stage's code version. A re-run computes
only clips whose key changed (new or edited clips, changed params) and drops clips that left the
manifest. DVC declares such folders `persist: true` so it does not wipe them before a run.
"""
from __future__ import annotations

import json
from pathlib import Path

from lipforge.hashing import obj_sha256

KEYS_FILE = "_cache_keys.json"


def clip_key(content_hash: str, stage_params: dict, code_version: str) -> str:
    return obj_sha256({"content": content_hash, "params": stage_params, "code": code_version})


class ClipCache:
    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._path = self.out_dir / KEYS_FILE
        self.keys: dict[str, str] = json.loads(self._path.read_text()) if self._path.exists() else {}

    def is_fresh(self, clip_id: str, key: str) -> bool:
        return self.keys.get(clip_id) == key

    def record(self, clip_id: str, key: str) -> None:
        self.keys[clip_id] = key

    def forget(self, clip_id: str) -> None:
        self.keys.pop(clip_id, None)

    def stale_ids(self, keep: set[str]) -> list[str]:
        """Clip ids cached before but no longer wanted (left the manifest): the caller deletes their files."""
        return sorted(set(self.keys) - keep)

    def save(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(self.keys.items())), indent=1))
        tmp.replace(self._path)
