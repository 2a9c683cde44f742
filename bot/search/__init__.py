"""Fuzzy search of the knowledge base: normalisation, the in-memory index and the matcher."""
