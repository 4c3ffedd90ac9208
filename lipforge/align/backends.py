"""Backend choice: `auto` is MFA when its CLI works, else pocketsphinx. Every result names its backend."""
from __future__ import annotations

import numpy as np

from lipforge.align import mfa_backend, pocketsphinx_backend
from lipforge.align.types import AlignError, AlignResult

BACKENDS = ("mfa", "pocketsphinx")


def available_backends() -> list[dict]:
    """[{name, available, detail}] for `lipforge doctor`."""
    return [mfa_backend.status(), pocketsphinx_backend.status()]


def resolve_backend(requested: str) -> str:
    """'auto' -> the best available backend; an explicit name must be available or this says how to fix it."""
    statuses = {s["name"]: s for s in available_backends()}
    if requested == "auto":
        for name in BACKENDS:
            if statuses[name]["available"]:
                return name
        raise AlignError("no alignment backend is available: " +
                         "; ".join(f"{n}: {s['detail']}" for n, s in statuses.items()))
    if requested not in statuses:
        raise AlignError(f"unknown alignment backend {requested!r}; use one of auto, {', '.join(BACKENDS)}")
    if not statuses[requested]["available"]:
        raise AlignError(f"alignment backend {requested!r} is not available: {statuses[requested]['detail']}")
    return requested


def align(audio: np.ndarray, transcript: str, backend: str = "auto", mfa_dictionary: str = "english_us_arpa",
          mfa_acoustic_model: str = "english_us_arpa") -> AlignResult:
    """Phone timeline of `transcript` in 16 kHz mono `audio` with the named (already resolved or auto) backend."""
    name = resolve_backend(backend) if backend == "auto" else backend
    if name == "pocketsphinx":
        return pocketsphinx_backend.align(audio, transcript)
    if name == "mfa":
        return mfa_backend.align(audio, transcript, mfa_dictionary, mfa_acoustic_model)
    raise AlignError(f"unknown alignment backend {name!r}; use one of auto, {', '.join(BACKENDS)}")
