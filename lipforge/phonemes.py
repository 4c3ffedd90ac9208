"""The global phoneme table: ARPAbet (CMUdict's 39 phones, stress removed) plus silence and padding.

Every stage that turns phones into ids (align, FluentLip's phoneme encoder, PER) uses this one table,
so ids mean the same thing across corpora, backends and runs.
"""
from __future__ import annotations

PAD = "<pad>"
SILENCE = "SIL"
ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY",
    "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y",
    "Z", "ZH",
)
PHONEME_TABLE: tuple[str, ...] = (PAD, SILENCE, *ARPABET)
PHONE_TO_ID: dict[str, int] = {p: i for i, p in enumerate(PHONEME_TABLE)}


def normalize_phone(phone: str) -> str:
    """'AH0' -> 'AH', 'sil'/'SP'/'<sil>'/'' -> 'SIL'. Raises on anything outside the table."""
    p = phone.strip().upper().strip("<>")
    p = p.rstrip("012")
    if p in ("", "SIL", "SP", "SPN", "NSN", "+NSN+", "+SPN+"):
        return SILENCE
    if p not in PHONE_TO_ID:
        raise ValueError(f"phone {phone!r} is not ARPAbet; the table is lipforge.phonemes.PHONEME_TABLE")
    return p


def phone_id(phone: str) -> int:
    return PHONE_TO_ID[normalize_phone(phone)]
