"""Audio in, match out: the one recogniser shared by evaluation and live recognition.

``Recognizer`` wires the stages a query goes through: (n,) samples -> 1 s windows at the
database hop -> embeddings (``models.encoder``) -> faiss search and scoring
(``matching.matcher``) -> a ``Match``, and times the two halves.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from common.audio import frame_windows
from database import Database
from database.calibration import read_calibration
from matching.decision import stored_rule
from matching.matcher import Match, Matcher
from models.checkpoint import model_identity
from models.encoder import WaveformEncoder, embed_samples, encode_batches, load_encoder


class Recognizer:
    """An encoder, its database and a matcher: (n,) samples -> (Match, inference ms, search ms).

    The query is embedded at the database's hop (``hop_samples``) so that its rows line up with
    database rows. ``identity`` is the encoder's model identity; the database must have been
    built by that model. ``decision_note``: one line saying how "no match" is decided (a config
    threshold, the database's calibrated rule, or none), for a log or a header.
    """

    def __init__(
        self,
        encoder: WaveformEncoder,
        database: Database,
        matcher: Matcher,
        identity: dict | None = None,
        decision_note: str = "",
    ):
        self.encoder = encoder
        self.database = database
        self.matcher = matcher
        self.identity = identity
        self.decision_note = decision_note
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
        calibrated: bool = True,
    ) -> Recognizer:
        """Load a checkpoint and the database at ``database_json``; ``nprobe`` None keeps the database's own.

        "No match" is decided by ``threshold`` when given; otherwise, with ``calibrated``, by the
        rule stored in the database JSON (``evaluation/calibrate.py``) when it was fitted for this
        model; otherwise every best candidate is answered. ``decision_note`` says which.
        """
        encoder, payload = load_encoder(weights, device)
        identity = model_identity(payload)
        database = Database.open(database_json)
        database.check_compatible(identity)
        rule = None
        if threshold is not None:
            note = f"decision: threshold {threshold:g} from the config (overrides any calibration)"
        elif calibrated:
            rule, note = stored_rule(read_calibration(database_json), identity, method, neighbors, str(database_json))
        else:
            note = "decision: none, every best candidate is answered"
        matcher = Matcher(database, neighbors=neighbors, threshold=threshold, method=method, nprobe=nprobe, rule=rule)
        return cls(encoder, database, matcher, identity, note)

    def embed(self, samples: np.ndarray) -> tuple[np.ndarray, float]:
        """(n,) float32 audio at ``sample_rate`` -> ((J, d) float32 rows at the database hop, milliseconds)."""
        start = time.perf_counter()
        rows = embed_samples(self.encoder, samples, hop_samples=self.hop_samples)
        return rows, 1000.0 * (time.perf_counter() - start)

    def embed_many(self, queries: list[np.ndarray], batch_size: int = 256) -> list[np.ndarray]:
        """Several (n_q,) queries -> [(J_q, d) rows], their windows embedded in shared batches (rows as ``embed``)."""
        window = self.encoder.frontend_config.window_samples
        framed = [frame_windows(np.asarray(query, dtype=np.float32), window, self.hop_samples) for query in queries]
        if not framed:
            return []
        device = next(self.encoder.parameters()).device
        with torch.inference_mode():
            rows = encode_batches(self.encoder, np.concatenate(framed), batch_size, device).cpu().numpy()
        return np.split(rows, np.cumsum([len(windows) for windows in framed])[:-1])

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
