"""Rendered training music (data_prep/build_renders.py): tiny ABC scores and one real Bach chorale from
music21's corpus, parsed by music21 and rendered by a real fluidsynth with the Debian soundfonts."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import mido
import pytest
import soundfile as sf

from common.config import ConfigError
from data_prep import build_renders, debian, renders
from data_prep.build import build_dataset, validate_config
from data_prep.build_renders import DEFAULT_SOUNDFONTS
from data_prep.manifest import read_manifest
from data_prep.prepare_data import main as prepare_data
from data_prep.splits import loudest_window_db
from tests.fakes import error_line
from tests.signals import synth_song

MISSING = [name for name in ["fluidsynth"] if shutil.which(name) is None]
MISSING += [path for path in DEFAULT_SOUNDFONTS if not Path(path).is_file()]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"rendering needs {', '.join(MISSING)} (Debian: fluidsynth, fluid-soundfont-gm, "
    "timgm6mb-soundfont; scripts/setup.sh installs them as root)",
)

HEADER = "M:4/4\nL:1/4\nQ:1/4=200\nK:C\n"
# Two voices of one piece (same title): one score; the same notes again in another collection.
HYMN = f"X:1\nT:Hymn\nT:Cantus\n{HEADER}c d e f | g2 g2 | a g f e | d4 |\n\n"
HYMN += f"X:2\nT:Hymn\nT:Bassus\n{HEADER}C, D, E, F, | G,2 G,2 | A, G, F, E, | D,4 |\n"
# Two tunes with different titles: two scores.
BOOK = f"X:1\nT:First reel\n{HEADER}c e g c' | b g e c | d f a d' | c'4 |\n\n"
BOOK += f"X:2\nT:Second reel\n{HEADER}G A B c | d e f g | a g f e | d2 c2 |\n"
AIR = f"X:1\nT:Air\n{HEADER}e2 d c | d e f2 | e d c B, | C4 |\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus laid out like music21's: collections of ABC files, and a real chorale copied from music21's."""
    root = tmp_path_factory.mktemp("corpus")
    for relative, text in {
        "hymns/hymn.abc": HYMN,
        "copies/hymn_again.abc": HYMN,
        "reels/book.abc": BOOK,
        "airs/air.abc": AIR,
    }.items():
        (root / relative).parent.mkdir(parents=True)
        (root / relative).write_text(text)
    (root / "chorales").mkdir()
    shutil.copy(renders.corpus_root() / "bach" / "bwv66.6.mxl", root / "chorales" / "bwv66.6.mxl")
    (root / "license.txt").write_text("test corpus terms\n")
    return root


def use_corpus(monkeypatch, root):
    monkeypatch.setattr(renders, "corpus_root", lambda: root)
    monkeypatch.setattr(build_renders, "corpus_root", lambda: root)


def render_config(tmp_path, cache, **changes):
    """Renders only, beside one small fake Debian music package (two songs: one for training, one for validation)."""
    config = {
        "output_dir": str(tmp_path / "out"),
        "cache_dir": str(cache),
        "sample_rate": 8000,
        "seed": 0,
        "workers": 1,
        "music_test": {},
        "music_train": {"music-b": None},
        "music_min_seconds": 3.0,
        "val_fraction": 0.5,
        "music_renders": {
            "train": {"reels": None, "chorales": None, "copies": None},
            "val": {"hymns": None, "airs": 1},
        },
        "render_min_seconds": 2.0,
        "render_max_seconds": 20.0,
    }
    config.update(changes)
    return validate_config(config)


def fake_music_package(cache):
    root = cache / "extracted" / "music-b"
    for k in range(2):
        path = root / "usr" / "share" / "b" / "music" / f"t{k}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), synth_song(4.0, seed=k), 8000)
    (root / debian.COMPLETE_MARKER).write_text("music-b_1.0-1_all.deb\n")


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    """One build with renders, shared by the tests that only read it: (config, summary)."""
    folder = tmp_path_factory.mktemp("built")
    fake_music_package(folder / "cache")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_corpus(monkeypatch, corpus)
        config = render_config(folder, folder / "cache")
        return config, build_dataset(config)


def rows(config, name):
    return read_manifest(Path(config["output_dir"]) / f"music/{name}.csv")


def collection(row):
    return row.source_path.split()[2].split("/")[0]  # "music21 corpus reels/book.abc#1 with ..."


def test_renders_are_split_by_collection_and_a_score_with_the_same_notes_stays_in_validation(built):
    config, summary = built
    assert {collection(r) for r in rows(config, "renders_train")} == {"reels", "chorales"}
    assert {collection(r) for r in rows(config, "renders_val")} == {"hymns", "airs"}
    assert summary["sets"]["renders_train"]["files"] == 3  # two reels and the chorale
    assert summary["sets"]["renders_train"]["duplicates"] == 1  # copies/hymn_again.abc: hymns/hymn.abc's notes
    assert summary["sets"]["renders_val"]["files"] == 2
    assert summary["sets"]["renders_train"]["hours"] > 0
    chorale = next(r for r in rows(config, "renders_train") if collection(r) == "chorales")
    assert 20.0 - 1 / 8000 <= chorale.seconds <= 20.0  # 23 s at the score's tempo, cut to render_max_seconds
    assert chorale.licence.startswith("music21 corpus terms; soundfont ")
    assert "licences/music21-corpus.txt" in chorale.licence_file


def test_renders_are_audible_mono_16bit_at_the_build_rate_and_in_the_trainers_song_lists(built):
    from training.songs import read_song_list

    config, _ = built
    out = Path(config["output_dir"])
    for row in rows(config, "renders_train") + rows(config, "renders_val"):
        info = sf.info(str(out / row.file))
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
        assert loudest_window_db(out / row.file, 8000) > -30
        assert row.file.startswith("music/train/rendered/music21-")
    training = json.loads((out / "training_config.json").read_text())  # (no noise built, so not validated here)
    train = read_song_list(training["train_pickle"], training["data_path"])
    val = read_song_list(training["val_pickle"], training["data_path"])
    expected_train = {str(out.resolve() / r.file) for r in read_manifest(out / "music/train.csv")}
    expected_train |= {str(out.resolve() / r.file) for r in rows(config, "renders_train")}
    assert set(train) == expected_train and len(train) == 4  # one song, three renders
    assert len(val) == 3 and set(train).isdisjoint(val)
    assert all(Path(path).exists() for path in train + val)
    assert "rendered/music21-hymns__hymn.wav" in pickle.loads((out / "val.pkl").read_bytes())


def test_every_midi_file_ends_by_silencing_all_16_channels_and_each_part_plays_on_its_own_channel(corpus, tmp_path):
    score = renders.Score("chorales", "bwv66.6.mxl")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_corpus(monkeypatch, corpus)
        base = mido.MidiFile(renders.score_midi(score, tmp_path))
    plan = renders.draw_plan(score, len(renders.part_tracks(base)), ("a.sf2",), ("brass", "reeds"), seed=3)
    assert plan == renders.draw_plan(score, 4, ("a.sf2",), ("brass", "reeds"), seed=3)  # replayable
    assert len(plan.programs) == 4
    assert all(p in renders.GM_FAMILIES["brass"] + renders.GM_FAMILIES["reeds"] for p in plan.programs)
    prepared = renders.prepare_midi(base, plan.programs)
    channels, programs = [], []
    for index in renders.part_tracks(prepared):
        track = prepared.tracks[index]
        channels.append({m.channel for m in track if m.type == "note_on"})
        programs.append([m.program for m in track if m.type == "program_change"])
    assert channels == [{0}, {1}, {2}, {3}] and programs == [[p] for p in plan.programs]
    last_note = max(
        sum(m.time for m in track[: i + 1])
        for track in prepared.tracks
        for i, m in enumerate(track)
        if "note" in m.type
    )
    ending, tick = {}, 0
    for message in prepared.tracks[-1]:
        tick += message.time
        if message.type == "control_change":
            ending.setdefault(message.control, []).append((message.channel, tick))
    for control in (123, 120):  # all notes off, all sound off
        assert sorted(channel for channel, _ in ending[control]) == list(range(16))
        assert all(at >= last_note for _, at in ending[control])
    assert min(at for _, at in ending[120]) > max(at for _, at in ending[123])  # the release is heard
    kept = renders.prepare_midi(base, None)  # the score's own instruments, still one channel per part
    assert [{m.channel for m in kept.tracks[i] if m.type == "note_on"} for i in renders.part_tracks(kept)] == channels


def test_an_unchanged_rerun_is_reused_and_a_changed_key_reuses_the_cached_renders(built, corpus, monkeypatch):
    config, first = built
    use_corpus(monkeypatch, corpus)
    again = build_dataset(config)
    assert "render" in again["reused_stages"] and again["sets"] == first["sets"]

    def no_work(*args):
        raise AssertionError("parsed or rendered again instead of reusing the cache")

    monkeypatch.setattr(renders, "_parse_to_midi", no_work)
    monkeypatch.setattr(renders, "render_midi", no_work)
    elsewhere = dict(config, output_dir=str(Path(config["output_dir"]).parent / "other"))
    changed = build_dataset(dict(elsewhere, render_min_seconds=2.5))  # the same renders in another output folder
    assert "render" not in changed["reused_stages"]
    assert changed["sets"]["renders_train"]["files"] == first["sets"]["renders_train"]["files"]
    assert sorted(r.sha1 for r in rows(elsewhere, "renders_train")) == sorted(
        r.sha1 for r in rows(config, "renders_train")
    )
    off = build_dataset(dict(elsewhere, music_renders={}))
    assert "renders_train" not in off["sets"]
    assert not (Path(elsewhere["output_dir"]) / "music" / "train" / "rendered").exists()
    assert len(pickle.loads((Path(elsewhere["output_dir"]) / "train.pkl").read_bytes())) == 1


def test_fluidsynth_that_does_not_finish_is_stopped_with_a_reason_naming_the_score(corpus, tmp_path, monkeypatch):
    use_corpus(monkeypatch, corpus)
    monkeypatch.setattr(renders, "RENDER_TIMEOUT_BASE_S", 0.001)
    monkeypatch.setattr(renders, "RENDER_TIMEOUT_PER_SECOND", 0.0)
    job = renders.RenderJob(
        renders.Score("reels", "book.abc", 1), 0, (DEFAULT_SOUNDFONTS[0],), (), 8000, 20.0, str(tmp_path)
    )
    reason = renders.render_score(job)
    assert reason == "reels/book.abc#1: fluidsynth did not finish rendering with FluidR3_GM.sf2 within 0 s " + (
        "(a note left sounding?)"
    )
    assert not list((tmp_path / "renders").glob("sr8000/**/*.wav"))


BAD_KEYS = [
    ({"music_renders": {"train": {"reel": None}}}, "music_renders: unknown corpus collection 'reel' (did you mean"),
    ({"music_renders": {"train": {"reels": 0}}}, "music_renders: 'reels' in 'train' must map to a positive score"),
    ({"music_renders": {"train": {"reels": 2}, "val": {"reels": 1}}}, "render collection 'reels' is in both 'train'"),
    ({"music_renders": {"test": {"reels": 2}}}, "music_renders: unknown split 'test' (use train, val)"),
    ({"render_programs": ["strngs"]}, "render_programs: unknown instrument family 'strngs' (did you mean 'strings'?)"),
    ({"render_hours": {"train": -1}}, "render_hours: 'train' must be a positive number of hours, got -1"),
    ({"render_soundfonts": ["/nowhere/gm.sf2"]}, "render_soundfonts: '/nowhere/gm.sf2' is not a file (Debian: "),
    ({"render_max_seconds": 10.0, "render_min_seconds": 30.0}, "render_max_seconds (10) must be above render_min"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_KEYS)
def test_a_bad_render_key_stops_the_build_with_one_line_naming_the_key(
    changes, message, corpus, tmp_path, monkeypatch, capsys
):
    use_corpus(monkeypatch, corpus)
    config = {"output_dir": str(tmp_path / "out"), "music_train": {}, "music_test": {}}
    config["music_renders"] = {"train": {"reels": None}}
    config.update(changes)
    path = tmp_path / "renders.json"
    path.write_text(json.dumps(config))
    assert prepare_data(["--config", str(path)]) == 2
    assert error_line(capsys).startswith(f"error: {message}")
    assert not (tmp_path / "out").exists()


def test_beethoven_and_mozart_are_refused_as_too_slow_to_parse(tmp_path):
    with pytest.raises(ConfigError, match="'beethoven' takes minutes per score to parse"):
        render_config(tmp_path, tmp_path / "cache", music_renders={"train": {"beethoven": 1}})


def test_full_renders_config_is_the_full_config_plus_renders_held_out_by_collection():
    configs = Path(__file__).resolve().parent.parent / "configs" / "data"
    full = json.loads((configs / "full.json").read_text())
    with_renders = json.loads((configs / "full_renders.json").read_text())
    added = {key: value for key, value in with_renders.items() if key not in full}
    assert {key: value for key, value in with_renders.items() if key in full} == dict(
        full, output_dir="data/full_renders"
    )
    render_keys = ["music_renders", "render_hours", "render_soundfonts", "render_programs", "render_min_seconds"]
    assert sorted(added) == sorted(render_keys + ["render_max_seconds"])
    config = validate_config(with_renders)
    assert config["render_hours"]["train"] == 3.0 and set(config["music_renders"]["val"])
