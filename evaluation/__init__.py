"""Offline and real-world evaluation protocols and live recognition (SPEC 7)."""
