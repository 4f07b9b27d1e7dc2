"""Fingerprint extraction and the faiss database (docs/database.md)."""
