"""Corpus scanning: find clips in a root (by layout), validate each one, assign identity-disjoint splits."""
