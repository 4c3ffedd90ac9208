"""Phoneme alignment: backends that time a transcript's phones in audio, and the pure math on timelines.

    from lipforge.align import align, available_backends
    result = align(audio_16k, "BIN BLUE AT F TWO NOW", backend="auto")   # AlignResult(backend, phones)
"""
from lipforge.align.backends import align, available_backends, resolve_backend
from lipforge.align.frames import FrameTrack, frame_phoneme_track
from lipforge.align.metrics import BoundaryErrors, boundary_errors
from lipforge.align.types import AlignError, AlignResult, PhoneSpan

__all__ = ["align", "available_backends", "resolve_backend", "FrameTrack", "frame_phoneme_track",
           "BoundaryErrors", "boundary_errors", "AlignError", "AlignResult", "PhoneSpan"]
