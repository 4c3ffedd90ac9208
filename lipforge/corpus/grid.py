"""The GRID corpus sentence grammar (Cooke et al. 2006): command color preposition letter digit adverb."""
from __future__ import annotations

import numpy as np

COMMANDS = ("bin", "lay", "place", "set")
COLORS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
# GRID leaves out "w": its name is three syllables, unlike every other letter
LETTERS = tuple(c for c in "abcdefghijklmnopqrstuvwxyz" if c != "w")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
GRAMMAR = (COMMANDS, COLORS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)


def sample_sentence(rng: np.random.Generator) -> list[str]:
    """Six lowercase GRID words, one drawn uniformly from each slot."""
    return [slot[int(rng.integers(len(slot)))] for slot in GRAMMAR]


def transcript(words: list[str]) -> str:
    """LRS2-style uppercase transcript: 'BIN BLUE AT F TWO NOW'."""
    return " ".join(w.upper() for w in words)


def is_grid_sentence(words: list[str]) -> bool:
    return len(words) == len(GRAMMAR) and all(w.lower() in slot for w, slot in zip(words, GRAMMAR))
