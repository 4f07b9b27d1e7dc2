"""Audio in, match out: the one recogniser shared by evaluation and live recognition.

``Recognizer`` wires the stages a query goes through: (n,) samples -> 1 s windows at the
database hop -> embeddings (``models.encoder``) -> faiss search and scoring
(``matching.matcher``) -> a ``Match``, and times the two halves.
"""

from __future__ import annotations

import os
import time

import numpy as np

from database import Database
from matching.matcher import Match, Matcher
from models.checkpoint import model_identity
from models.encoder import WaveformEncoder, embed_samples, load_encoder


class Recognizer:
    """An encoder, its database and a matcher: (n,) samples -> (Match, inference ms, search ms).

    The query is embedded at the database's hop (``hop_samples``) so that its rows line up with
    database rows. ``identity`` is the encoder's model identity; the database must have been
    built by that model.
    """

    def __init__(self, encoder: WaveformEncoder, database: Database, matcher: Matcher, identity: dict | None = None):
        self.encoder = encoder
        self.database = database
        self.matcher = matcher
        self.identity = identity
        if identity is not None:
            database.check_compatible(identity)  # DatabaseError naming both models when they differ
        self.sample_rate = int(encoder.frontend_config.sample_rate)
        self.hop_samples = int(round(database.hop_seconds * self.sample_rate))

    @classmethod
    def load(
        cls,
        weights: str | os.PathLike,
        database_json: str | os.PathLike,
        device: str = "cpu",
        neighbors: int = 4,
        threshold: float | None = None,
        method: str = "sequence",
        nprobe: int | None = None,
    ) -> Recognizer:
        """Load a checkpoint and the database at ``database_json``; ``nprobe`` None keeps the database's own."""
        encoder, payload = load_encoder(weights, device)
        identity = model_identity(payload)
        database = Database.open(database_json)
        database.check_compatible(identity)
        matcher = Matcher(database, neighbors=neighbors, threshold=threshold, method=method, nprobe=nprobe)
        return cls(encoder, database, matcher, identity)

    def embed(self, samples: np.ndarray) -> tuple[np.ndarray, float]:
        """(n,) float32 audio at ``sample_rate`` -> ((J, d) float32 rows at the database hop, milliseconds)."""
        start = time.perf_counter()
        rows = embed_samples(self.encoder, samples, hop_samples=self.hop_samples)
        return rows, 1000.0 * (time.perf_counter() - start)

    def search(self, rows: np.ndarray) -> tuple[Match, float]:
        """(J, d) query rows -> (match, milliseconds): faiss search + candidate scoring."""
        start = time.perf_counter()
        match = self.matcher.match(rows)
        return match, 1000.0 * (time.perf_counter() - start)

    def identify(self, samples: np.ndarray) -> tuple[Match, float, float]:
        """(n,) float32 query at ``sample_rate`` -> (match, inference ms, search ms).

        Inference is framing + embedding; search is the matcher (faiss search + candidate scoring).
        """
        rows, inference_ms = self.embed(samples)
        match, search_ms = self.search(rows)
        return match, inference_ms, search_ms
