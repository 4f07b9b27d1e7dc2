"""Shared building blocks: audio I/O, configuration loading, atomic file writes, checkpoints."""
