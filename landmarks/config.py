"""Every tunable of the landmark fingerprinter in one object, with the two presets.

The analysis parameters (everything down to ``max_df_bins``) are fixed when a table is built
and travel inside the saved table; the query parameters (``min_count`` and below) may be
changed on a loaded table with ``LandmarkTable.with_query``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from common.audio import SAMPLE_RATE
from common.errors import UserError

# Decay of the masking threshold (nats per second) per peak per second wanted; see masking_decay.
DECAY_NATS_PER_PEAK = 0.12

# Fields that change the stored hashes; a table refuses queries analysed with different values.
ANALYSIS_FIELDS = (
    "sample_rate",
    "fft_samples",
    "hop_samples",
    "density",
    "spread_bins",
    "max_peaks_per_frame",
    "fan_out",
    "min_dt_frames",
    "max_dt_frames",
    "max_df_bins",
)


@dataclass(frozen=True)
class LandmarkConfig:
    """Parameters of peak picking, pairing and matching (Wang 2003; audfprint's defaults scaled to 8 kHz).

    Spectrogram: ``fft_samples``-point Hann STFT every ``hop_samples`` (512 / 256 at 8 kHz:
    32 ms frames, 15.6 Hz bins, 257 bins).

    Peaks: ``density`` is the target number of peaks per second; it sets how fast the masking
    threshold decays. ``spread_bins`` is the standard deviation (bins) of the Gaussian skirt a
    peak casts over neighbouring frequencies; at most ``max_peaks_per_frame`` peaks per frame.

    Pairs: each anchor peak is paired with the first ``fan_out`` peaks whose time is
    ``min_dt_frames``..``max_dt_frames`` frames later and whose frequency is within
    ``max_df_bins`` bins.

    Matching: a song is reported when at least ``min_count`` query hashes agree on one time
    offset, within +-``offset_tolerance_frames``, and that count exceeds the runner-up song's by
    at least ``min_margin`` + ``margin_per_runner_up`` x the runner-up's count (the runner-up's
    count is the chance level of this query, and chance margins grow with it).
    ``query_shifts`` > 1 also analyses the query at that many sub-hop shifts (more hashes, more
    robust, proportionally slower).
    ``max_entries_per_hash`` drops hashes stored more often than that from the vote (0 = keep all).
    """

    sample_rate: int = SAMPLE_RATE
    fft_samples: int = 512
    hop_samples: int = 256
    density: float = 20.0
    spread_bins: float = 30.0
    max_peaks_per_frame: int = 5
    fan_out: int = 3
    min_dt_frames: int = 2
    max_dt_frames: int = 63
    max_df_bins: int = 31
    min_count: int = 5
    min_margin: int = 6
    margin_per_runner_up: float = 0.0
    offset_tolerance_frames: int = 1
    query_shifts: int = 1
    max_entries_per_hash: int = 1000

    def __post_init__(self) -> None:
        positive = ("sample_rate", "fft_samples", "hop_samples", "max_peaks_per_frame", "fan_out")
        positive += ("min_dt_frames", "max_dt_frames", "max_df_bins", "min_count", "query_shifts")
        for name in positive:
            _check(name, getattr(self, name), lambda value: value >= 1, "an integer >= 1")
        for name in ("min_margin", "offset_tolerance_frames", "max_entries_per_hash"):
            _check(name, getattr(self, name), lambda value: value >= 0, "an integer >= 0")
        _check("margin_per_runner_up", self.margin_per_runner_up, lambda value: value >= 0, "a number >= 0", False)
        for name in ("density", "spread_bins"):
            _check(name, getattr(self, name), lambda value: value > 0, "a number > 0", integer=False)
        if self.fft_samples % 2:
            raise UserError(f"landmarks: fft_samples must be even, got {self.fft_samples}")
        if self.hop_samples > self.fft_samples:
            raise UserError(f"landmarks: hop_samples ({self.hop_samples}) must not exceed fft_samples")
        if self.max_dt_frames < self.min_dt_frames:
            raise UserError(f"landmarks: max_dt_frames ({self.max_dt_frames}) is below min_dt_frames")
        if self.max_df_bins > self.fft_samples // 2:
            raise UserError(f"landmarks: max_df_bins ({self.max_df_bins}) exceeds the {self.fft_samples // 2} bins")
        if self.hop_samples % self.query_shifts:
            raise UserError(f"landmarks: query_shifts ({self.query_shifts}) must divide hop_samples")

    @property
    def bins(self) -> int:
        """Frequency bins per frame (fft_samples / 2 + 1)."""
        return self.fft_samples // 2 + 1

    @property
    def frame_seconds(self) -> float:
        """Seconds between frames (one hop)."""
        return self.hop_samples / self.sample_rate

    def accepts(self, score: int, runner_up_score: int, min_margin: int | None = None) -> bool:
        """The no-match rule: is a best song with ``score`` aligned hashes, runner-up at ``runner_up_score``, a match?

        ``min_margin`` replaces the configured one (to study the rule after the fact).
        """
        margin = self.min_margin if min_margin is None else min_margin
        return (
            score >= self.min_count and score - runner_up_score >= margin + self.margin_per_runner_up * runner_up_score
        )

    def analysis(self) -> dict:
        """The fields that shape the stored hashes, as a plain dict."""
        return {name: getattr(self, name) for name in ANALYSIS_FIELDS}

    def replace(self, **changes) -> LandmarkConfig:
        """A copy with some fields changed (validated again); unknown names are a UserError."""
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(self)})
        if unknown:
            raise UserError(f"landmarks: unknown parameter '{unknown[0]}'")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> LandmarkConfig:
        """Inverse of ``to_dict``; unknown keys are a UserError naming the key."""
        return cls().replace(**values)

    @classmethod
    def preset(cls, name: str, **changes) -> LandmarkConfig:
        """``default`` or ``dense`` (see docs/landmarks.md), with optional field overrides."""
        if name not in PRESETS:
            raise UserError(f"landmarks: unknown preset '{name}' (choose from {', '.join(PRESETS)})")
        return PRESETS[name].replace(**changes)


def masking_decay(density: float, hop_samples: int, sample_rate: int) -> float:
    """Nats per frame by which the masking threshold falls, for about ``density`` peaks per second.

    Density grows about linearly with the decay rate; DECAY_NATS_PER_PEAK was fitted on the demo
    music (docs/landmarks.md), so the achieved density on other music is near, not at, the target.
    """
    return density * DECAY_NATS_PER_PEAK * hop_samples / sample_rate


def _check(name: str, value, valid, wanted: str, integer: bool = True) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not valid(value):
        raise UserError(f"landmarks: {name} must be {wanted}, got {value!r}")


# Measured on the demo music (docs/landmarks.md, bench/landmarks.py).
PRESETS = {
    "default": LandmarkConfig(),
    "dense": LandmarkConfig(density=70.0, fan_out=8, min_margin=8, margin_per_runner_up=0.5),
}
