"""End to end on audio: song files -> fingerprints -> database -> excerpt queries -> matches.

Uses the project's shipped demo model (pretrained/fingerprinter_cpu.pt, trained by
training/trainer.py), because random weights are not robust to a query starting between two hops.
"""

from pathlib import Path

import pytest

from common.audio import load_audio, write_wav
from database import Database
from extraction.extractor import extract_fingerprints
from extraction.manifest import load_fingerprint_folder
from extraction.songs import plan_songs
from matching.decision import choose_threshold
from matching.matcher import Matcher
from models.checkpoint import model_identity
from models.encoder import embed_samples, load_encoder
from tests.fakes import save_tiny_checkpoint
from tests.signals import synth_song

DEMO_MODEL = Path(__file__).resolve().parents[1] / "pretrained" / "fingerprinter_cpu.pt"
SR = 8000


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A Flat database of five 30 s songs plus three 20 s songs that are not in it."""
    root = tmp_path_factory.mktemp("songs")
    for number in range(5):
        write_wav(root / "library" / f"track{number}.wav", synth_song(30.0, 100 + number))
    for number in range(3):
        write_wav(root / "unknown" / f"other{number}.wav", synth_song(20.0, 200 + number))
    encoder, payload = load_encoder(DEMO_MODEL)
    extract_fingerprints(encoder, payload, plan_songs([root / "library"]), root / "fingerprints", progress=False)
    manifest, songs = load_fingerprint_folder(root / "fingerprints")
    database = Database.build(songs, identity=manifest["identity"], hop_seconds=manifest["hop_seconds"])
    database.save(root / "db.index")
    return {"root": root, "encoder": encoder, "payload": payload}


def excerpt(path, start_seconds, seconds=5.0):
    audio = load_audio(path)
    start = int(round(start_seconds * SR))
    return audio[start : start + int(seconds * SR)]


def negative_scores(world, matcher):
    """Best scores of 5 s queries from songs that are not in the database."""
    scores = []
    for path in sorted((world["root"] / "unknown").glob("*.wav")):
        for start in (0.3, 4.1, 8.75, 13.2):
            scores.append(matcher.match(embed_samples(world["encoder"], excerpt(path, start))).score)
    return scores


def test_a_sub_hop_excerpt_is_found_with_its_offset_and_gone_after_removal(world):
    database = Database.load(world["root"] / "db.index")
    database.check_compatible(model_identity(world["payload"]))
    matcher = Matcher(database, neighbors=4)
    matcher.threshold = choose_threshold(negative_scores(world, matcher), false_match_rate=0.0)
    song = world["root"] / "library" / "track2.wav"
    for start in (3.25, 11.4, 17.15):  # between two 0.5 s hops
        match = matcher.match(embed_samples(world["encoder"], excerpt(song, start)))
        assert match.song == "track2", (start, match)
        assert abs(match.offset_seconds - start) <= 0.25, (start, match)
    database.remove_songs(["track2"])
    gone = Matcher(database, neighbors=4, threshold=matcher.threshold)
    match = gone.match(embed_samples(world["encoder"], excerpt(song, 3.25)))
    assert match.song is None, match


def test_excerpts_at_the_very_start_and_end_of_songs_are_found(world):
    matcher = Matcher(Database.load(world["root"] / "db.index"))
    first = world["root"] / "library" / "track0.wav"  # the first song in the index
    match = matcher.match(embed_samples(world["encoder"], excerpt(first, 0.0)))
    assert (match.song, match.offset_seconds) == ("track0", 0.0)
    last = world["root"] / "library" / "track4.wav"  # the last song, its final 5 s
    match = matcher.match(embed_samples(world["encoder"], excerpt(last, 25.0)))
    assert match.song == "track4" and abs(match.offset_seconds - 25.0) <= 0.25
    match = matcher.match(embed_samples(world["encoder"], excerpt(last, 24.8, seconds=5.2)))
    assert match.song == "track4" and abs(match.offset_seconds - 24.8) <= 0.25


def test_querying_with_another_model_is_an_error_naming_both(world, tmp_path):
    from database import DatabaseError

    save_tiny_checkpoint(tmp_path / "other.pt", model_str="audsearch")
    _, other = load_encoder(tmp_path / "other.pt")
    database = Database.load(world["root"] / "db.index")
    with pytest.raises(DatabaseError, match=r"built with fingerprinter.*query uses audsearch"):
        database.check_compatible(model_identity(other))


def test_vote_finds_the_song_too(world):
    matcher = Matcher(Database.load(world["root"] / "db.index"), neighbors=4, method="vote")
    match = matcher.match(embed_samples(world["encoder"], excerpt(world["root"] / "library" / "track1.wav", 9.0)))
    assert match.song == "track1" and match.offset_seconds == 9.0
