"""The values every alignment backend returns."""
from __future__ import annotations

from dataclasses import dataclass


class AlignError(RuntimeError):
    """A clip that could not be aligned; the message becomes its rejects reason."""


@dataclass(frozen=True)
class PhoneSpan:
    phone: str  # ARPAbet without stress, or "SIL"
    start: float  # seconds
    end: float

    def to_dict(self) -> dict:
        return {"phone": self.phone, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class AlignResult:
    backend: str  # which backend produced the phones ("pocketsphinx", "mfa")
    phones: list[PhoneSpan]
