"""The faiss side of a database: building and training an inner-product index, and its search settings."""

from __future__ import annotations

import faiss
import numpy as np

from database.errors import DatabaseError


def is_flat(index: faiss.Index) -> bool:
    """True for a flat index, which holds its vectors exactly (no separate store needed)."""
    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


def new_index(d: int, factory: str, arrays: list[np.ndarray], max_train_vectors: int, seed: int) -> faiss.Index:
    """An empty inner-product index ``index_factory(d, factory)``, trained on a sample of ``arrays`` if needed."""
    try:
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise DatabaseError(f"faiss cannot build index '{factory}': {faiss_message(error)}") from None
    if not index.is_trained:
        if max_train_vectors < 1:
            raise DatabaseError(
                f"index '{factory}' needs training: max_train_vectors must be at least 1, got {max_train_vectors}"
            )
        sample = training_sample(arrays, max_train_vectors, seed)
        try:
            index.train(sample)
        except RuntimeError as error:
            raise DatabaseError(
                f"faiss cannot train '{factory}' on {len(sample)} vectors: {faiss_message(error)}"
            ) from None
    return index


def set_index_nprobe(index: faiss.Index, nprobe: int) -> bool:
    """Inverted lists searched per query, through faiss.ParameterSpace; False (nothing set) without IVF."""
    if nprobe < 1:
        raise DatabaseError(f"nprobe must be at least 1, got {nprobe}")
    try:
        faiss.extract_index_ivf(index)
    except RuntimeError:
        return False  # no inverted lists (Flat, PQ, HNSW...): nothing to set
    faiss.ParameterSpace().set_index_parameter(index, "nprobe", int(nprobe))
    return True


def faiss_message(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error:"):
            return line
    return lines[-1] if lines else type(error).__name__


def training_sample(arrays: list[np.ndarray], max_vectors: int, seed: int) -> np.ndarray:
    """At most ``max_vectors`` rows drawn uniformly without replacement across all songs (float32)."""
    counts = np.array([len(array) for array in arrays], dtype=np.int64)
    total = int(counts.sum())
    if total <= max_vectors:
        return np.ascontiguousarray(np.concatenate([np.asarray(a, dtype=np.float32) for a in arrays]))
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_vectors, replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for number, array in enumerate(arrays):
        lo, hi = np.searchsorted(chosen, [starts[number], starts[number + 1]])
        if hi > lo:
            parts.append(np.asarray(array[chosen[lo:hi] - starts[number]], dtype=np.float32))
    return np.ascontiguousarray(np.concatenate(parts))
