"""The rendered-music stage of a data build: scores from music21's corpus, rendered with FluidSynth.

Music is split **by source** here too: each corpus collection (a composer's folder such as
``bach`` or ``palestrina``, or a folk collection such as ``ryansMammoth``) belongs to one split
(``music_renders``). Validation is rendered first, and a score with the same notes as one
already kept (one piece in two collections) is dropped, so no score is heard on both sides.
Within a split the collections take turns, each in a seeded random order, until the split has
``render_hours`` of music or every collection has given its maximum number of scores. Each
render (``data_prep.renders``) is cached by score, soundfont, programs and rate. Writes
``music/train/rendered`` (both splits: the trainer reads training and validation songs from
``music/train``) and ``music/renders_{train,val}.csv``; the runner adds these files to
``train.pkl`` / ``val.pkl``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.atomic import atomic_write_bytes
from common.config import ConfigError, closest_key
from data_prep.build_state import RENDER_MANIFESTS, Build, finish_stage, stage_hash, start_stage, state_path
from data_prep.decode import link_or_copy
from data_prep.manifest import ManifestRow
from data_prep.renders import (
    GM_FAMILIES,
    SLOW_COLLECTIONS,
    Rendered,
    RenderJob,
    Score,
    corpus_collections,
    corpus_root,
    fluidsynth_version,
    list_scores,
    music21_version,
    render_score,
    soundfont_origin,
)
from data_prep.splits import SILENCE_DB, SelectionStats, check_disjoint, loudest_window_db, output_name

RENDER_KEYS = [
    "music_renders",
    "render_hours",
    "render_soundfonts",
    "render_programs",
    "render_min_seconds",
    "render_max_seconds",
]
RENDER_SPLITS = ("val", "train")  # validation first: a score in two collections stays in validation
RENDER_FOLDER = Path("music") / "train" / "rendered"
DEFAULT_SOUNDFONTS = ["/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2"]
GUESSED_SCORE_SECONDS = 90.0  # length of a render before any is known, for the first batch's size
SOUNDFONT_HINT = "Debian: fluid-soundfont-gm, timgm6mb-soundfont; scripts/setup.sh installs them as root"


def build_renders(build: Build) -> None:
    """Render, select and place the rendered sets (module docstring), unless a complete build is reused."""
    folder = build.output / RENDER_FOLDER
    if not build.config["music_renders"]:
        _remove_renders(build, folder)
        return
    digest = stage_hash(build, "render", RENDER_KEYS, [])
    if start_stage(build, "render", digest):
        return
    seen: dict[str, str] = {}
    taken: set[str] = set()
    workers = build.config["workers"]
    with contextlib.ExitStack() as stack:  # one pool for both splits: each worker imports music21 once
        if workers > 1:
            render = partial(stack.enter_context(ProcessPoolExecutor(max_workers=workers)).map, render_score)
        else:
            render = partial(map, render_score)
        for split in RENDER_SPLITS:
            stats = build.stats.setdefault(f"renders_{split}", SelectionStats())
            kept = _render_split(build, split, render, seen, stats)
            build.rows[f"renders_{split}"] = _place(build, kept, folder, taken)
    finish_stage(build, "render", digest, RENDER_MANIFESTS, [folder])


def _render_split(
    build: Build,
    split: str,
    render: Callable[[list[RenderJob]], Iterable[Rendered | str]],
    seen: dict[str, str],
    stats: SelectionStats,
) -> list[tuple[Score, Rendered]]:
    """Render the split's scores in turn and keep those long enough, new and not silent, up to its limits."""
    config = build.config
    limits = config["music_renders"].get(split, {})
    hours = config["render_hours"].get(split)
    target_seconds = None if hours is None else 3600.0 * hours
    queue = interleaved_scores(corpus_root(), list(limits), build.seed)
    job = dict(
        seed=build.seed,
        soundfonts=tuple(config["render_soundfonts"]),
        families=tuple(config["render_programs"]),
        sample_rate=build.sample_rate,
        max_seconds=config["render_max_seconds"],
        cache_dir=str(build.cache),
    )
    kept: list[tuple[Score, Rendered]] = []
    per_collection: Counter[str] = Counter()
    kept_seconds, position = 0.0, 0
    workers = max(1, config["workers"])

    def wants(collection: str) -> bool:
        return limits[collection] is None or per_collection[collection] < limits[collection]

    bar = tqdm(total=target_seconds, desc=f"renders {split}", unit="audio-s", unit_scale=True, dynamic_ncols=True)
    with bar:
        while position < len(queue) and (target_seconds is None or kept_seconds < target_seconds):
            # Scores are judged in queue order, so what is kept does not depend on the batches (nor on workers).
            batch: list[Score] = []
            batch_size = _batch_size(workers, target_seconds, kept_seconds, len(kept))
            while position < len(queue) and len(batch) < batch_size:
                position += 1
                if wants(queue[position - 1].collection):
                    batch.append(queue[position - 1])
            results = render([RenderJob(score, **job) for score in batch])
            for score, result in zip(batch, results):
                if (target_seconds is not None and kept_seconds >= target_seconds) or not wants(score.collection):
                    continue  # rendered (and cached) for nothing: the batch overshot a limit
                stats.candidates += 1
                dropped = _why_dropped(result, config["render_min_seconds"], seen)
                if dropped:
                    setattr(stats, dropped, getattr(stats, dropped) + 1)
                    stats.reasons += [result] if isinstance(result, str) else []
                else:
                    seen[result.notes_sha1] = f"renders/{split}"
                    per_collection[score.collection] += 1
                    kept.append((score, result))
                    kept_seconds += result.audio.seconds
                    bar.set_postfix(scores=len(kept), refresh=False)
                    bar.update(result.audio.seconds)
    return kept


def _why_dropped(result: Rendered | str, min_seconds: float, seen: dict[str, str]) -> str | None:
    """The SelectionStats count a render adds to when it is not kept (a reason: unreadable), or None."""
    if isinstance(result, str):
        return "unreadable"
    if result.audio.seconds < min_seconds:
        return "too_short"
    if result.notes_sha1 in seen:
        return "duplicates"
    if loudest_window_db(Path(result.audio.path), result.audio.sample_rate) < SILENCE_DB:
        return "silent"
    return None


def _batch_size(workers: int, target_seconds: float | None, kept_seconds: float, kept: int) -> int:
    """Scores to render next: enough to keep the workers busy, few enough not to overshoot ``target_seconds``
    by much (a batch is rendered whole; what it renders past the target stays in the cache only)."""
    if target_seconds is None:
        return 4 * workers
    mean_seconds = kept_seconds / kept if kept else GUESSED_SCORE_SECONDS
    needed = int(np.ceil((target_seconds - kept_seconds) / mean_seconds))
    return max(workers, min(4 * workers, needed))


def interleaved_scores(root: Path, collections: list[str], seed: int) -> list[Score]:
    """Every score of ``collections``, each collection in a seeded random order, the collections taking turns."""
    orders = []
    for collection in collections:
        scores = list_scores(root, collection)
        rng = np.random.default_rng([seed, zlib.crc32(f"renders/{collection}".encode())])
        orders.append([scores[i] for i in rng.permutation(len(scores))])
    longest = max((len(order) for order in orders), default=0)
    return [order[turn] for turn in range(longest) for order in orders if turn < len(order)]


def _place(build: Build, kept: list[tuple[Score, Rendered]], folder: Path, taken: set[str]) -> list[ManifestRow]:
    """Link (or copy) the kept renders from the cache into ``folder`` under unique names; their rows."""
    rows = []
    for score, rendered in sorted(kept, key=lambda item: item[0].name):
        target = folder / output_name(f"music21-{score.collection}", f"{score.stem}.wav", None, taken)
        if not (target.exists() and os.path.samefile(target, rendered.audio.path)):  # not yet a link to the cache
            link_or_copy(Path(rendered.audio.path), target)
        rows.append(_row(build, target, score, rendered))
    return rows


def _row(build: Build, target: Path, score: Score, rendered: Rendered) -> ManifestRow:
    origin = soundfont_origin(rendered.plan.soundfont)
    licence_files = _corpus_licences(build, score.collection)
    if origin.copyright is not None:
        copied = f"licences/{origin.package}.copyright"
        if not (build.output / copied).exists():
            atomic_write_bytes(build.output / copied, origin.copyright.read_bytes())
        licence_files.append(copied)
    plan = rendered.plan
    programs = "the score's own" if plan.programs is None else " ".join(str(p) for p in plan.programs)
    return ManifestRow(
        file=target.relative_to(build.output).as_posix(),
        seconds=rendered.audio.seconds,
        package="generated",
        package_version=f"music21 {music21_version()}, fluidsynth {fluidsynth_version()}, "
        f"{origin.package or Path(plan.soundfont).name} {origin.version}".strip(),
        source_path=f"music21 corpus {score.name} with {Path(plan.soundfont).name}, GM programs {programs}",
        channel="mix",
        licence=f"music21 corpus terms; soundfont {origin.licence}",
        licence_file=";".join(licence_files),
        sha1=rendered.audio.sha1,
    )


def _corpus_licences(build: Build, collection: str) -> list[str]:
    """The corpus's licence statement, and the collection's own where it has one, copied to licences/."""
    root = corpus_root()
    copied = []
    for source, name in ((root / "license.txt", "music21-corpus.txt"), (root / collection / "license.txt", None)):
        if not source.exists():
            continue
        relative = f"licences/{name or f'music21-corpus-{collection}.txt'}"
        if not (build.output / relative).exists():
            atomic_write_bytes(build.output / relative, source.read_bytes())
        copied.append(relative)
    return copied


def _remove_renders(build: Build, folder: Path) -> None:
    """With renders off, take away what an earlier build with renders left (files, manifests, state)."""
    for stale in folder.glob("*.wav"):
        stale.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()
    for manifest in RENDER_MANIFESTS.values():
        (build.output / manifest).unlink(missing_ok=True)
    state_path(build, "render").unlink(missing_ok=True)


# --------------------------------------------------------------------------- config checks


def check_render_config(config: dict) -> None:
    """ConfigError (one line, naming the key) for a render configuration that cannot work; nothing when renders
    are off."""
    renders = config["music_renders"]
    if not renders:
        return
    for split, collections in renders.items():
        if split not in RENDER_SPLITS:
            raise ConfigError(f"music_renders: unknown split '{split}' (use train, val)")
        if not isinstance(collections, dict):
            raise ConfigError(
                f"music_renders: '{split}' must map corpus collections to a score count or null, got {collections!r}"
            )
        for collection, limit in collections.items():
            if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
                raise ConfigError(
                    f"music_renders: '{collection}' in '{split}' must map to a positive score count or null, "
                    f"got {limit!r}"
                )
    check_disjoint(renders, "render collection")
    root = corpus_root()
    if root is None:
        raise ConfigError("music_renders: needs the music21 package (pip install -r requirements.txt)")
    known = corpus_collections(root)
    for collection in (name for collections in renders.values() for name in collections):
        if collection in SLOW_COLLECTIONS:
            raise ConfigError(
                f"music_renders: '{collection}' takes minutes per score to parse; "
                f"{' and '.join(SLOW_COLLECTIONS)} are not rendered"
            )
        if collection not in known:
            raise ConfigError(
                f"music_renders: unknown corpus collection '{collection}'{closest_key(collection, known)}"
            )
    for split, hours in config["render_hours"].items():
        if split not in RENDER_SPLITS:
            raise ConfigError(f"render_hours: unknown split '{split}' (use train, val)")
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
            raise ConfigError(f"render_hours: '{split}' must be a positive number of hours, got {hours!r}")
    _check_render_tools(config)


def _check_render_tools(config: dict) -> None:
    soundfonts = config["render_soundfonts"]
    if not soundfonts:
        raise ConfigError("render_soundfonts: list at least one General MIDI soundfont (.sf2)")
    for soundfont in soundfonts:
        if not isinstance(soundfont, str) or not Path(soundfont).is_file():
            raise ConfigError(f"render_soundfonts: {soundfont!r} is not a file ({SOUNDFONT_HINT})")
    for family in config["render_programs"]:
        if family not in GM_FAMILIES:
            raise ConfigError(
                f"render_programs: unknown instrument family {family!r}{closest_key(str(family), list(GM_FAMILIES))}; "
                f"known: {', '.join(GM_FAMILIES)}"
            )
    if config["render_max_seconds"] <= config["render_min_seconds"]:
        raise ConfigError(
            f"render_max_seconds ({config['render_max_seconds']:g}) must be above "
            f"render_min_seconds ({config['render_min_seconds']:g})"
        )
    if shutil.which("fluidsynth") is None:
        raise ConfigError(
            "music_renders: needs the fluidsynth program (Debian: fluidsynth; scripts/setup.sh installs it as root)"
        )
