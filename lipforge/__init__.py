"""lipforge: a reproducible pipeline for training audio-driven talking-face (lip-sync) models."""
import os
from pathlib import Path

# librosa's numba kernels take ~15 s to compile; a persistent cache makes every later process (and every
# Ray worker) start in ~1 s. Must be set before numba is imported.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "lipforge" / "numba"))

__version__ = "0.1.0"
