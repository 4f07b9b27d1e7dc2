"""Classical landmark fingerprinting (Wang 2003; audfprint and Olaf follow the same plan).

One module per stage: ``peaks`` (spectrogram peaks above a decaying masking threshold),
``hashes`` (peak pairs in a target zone -> integer hashes with anchor times), ``table`` (the
hash -> (song, time) store, add / remove / save / load), ``matcher`` (offset voting). All
tunables live in ``LandmarkConfig``; ``LandmarkConfig.preset("dense")`` is the accurate setting.

    table = LandmarkTable.from_folder("data/demo/music/test", LandmarkConfig.preset("dense"))
    table.save("runs/landmarks/demo.npz")
    match = LandmarkTable.load("runs/landmarks/demo.npz").match(samples)  # (n,) float at 8 kHz
    match.song, match.offset_seconds, match.score
"""

from landmarks.config import PRESETS, LandmarkConfig
from landmarks.matcher import LandmarkMatch
from landmarks.table import LandmarkTable

__all__ = ["PRESETS", "LandmarkConfig", "LandmarkMatch", "LandmarkTable"]
