"""Fingerprint extraction and the faiss database (SPEC 5 and 6)."""
