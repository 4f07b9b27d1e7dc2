"""Extraction -> index -> simulator -> recording.py on a few short songs, through the real scripts."""

import json

import numpy as np
import pytest

from common.audio import write_wav
from common.config import run_script
from common.playlist import read_playlist
from evaluation import evaluate_recording, simulate_recording
from generation import generate_fingerprints, generate_index
from tests.signals import synth_song

SR = 8000
# Multiples of the 0.5 s hop, so that in a clean recording every query starts on the database
# grid of its song and its windows are exactly the indexed windows.
SONG_SECONDS = (8.0, 6.5, 7.0)
LEAD_IN = 1.5


def write_config(path, **values):
    path.write_text(json.dumps(values))
    return str(path)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("e2e")
    for number, seconds in enumerate(SONG_SECONDS):
        write_wav(root / "songs" / f"song_{number}.wav", synth_song(seconds, 40 + number))
    rng = np.random.default_rng(3)
    write_wav(root / "noise" / "hum.wav", 0.1 * rng.standard_normal(4 * SR).astype(np.float32))
    (root / "tiny.pt").symlink_to(tiny_checkpoint)

    extraction = write_config(
        root / "extract.json",
        **{
            "input dirs": [str(root / "songs")],
            "weights": str(root / "tiny.pt"),
            "output dir": str(root / "fp"),
            "num_workers": 0,
            "device": "cpu",
            "progress": False,
        },
    )
    assert (
        run_script(generate_fingerprints.SCHEMA, "extract", generate_fingerprints.main, ["--config", extraction]) == 0
    )
    index = write_config(
        root / "index.json",
        input_dir=str(root / "fp"),
        output_dir=str(root / "db"),
        name="e2e",
        index="Flat",
        d=128,
        progress=False,
    )
    assert run_script(generate_index.SCHEMA, "index", generate_index.main, ["--config", index]) == 0

    common = {"true_songs": str(root / "songs"), "song_count": 3, "lead_in_seconds": LEAD_IN, "seed": 5}
    # By construction: no loudspeaker, room, microphone band, level change or noise.
    clean = write_config(
        root / "sim_clean.json",
        **common,
        output_dir=str(root / "clean"),
        snr_levels={"clean": None},
        room_rt60=None,
        speaker_band_hz=None,
        phone_band_hz=None,
        level_dbfs=None,
    )
    noisy = write_config(
        root / "sim_noisy.json",
        **common,
        output_dir=str(root / "noisy"),
        snr_levels={"low_t": 15, "high_t": 0},
        background_noises=str(root / "noise"),
        room_rt60=0.3,
        room_size=[5.0, 4.0, 3.0],
    )
    for config in (clean, noisy):
        assert run_script(simulate_recording.SCHEMA, "simulate", simulate_recording.main, ["--config", config]) == 0
    return root


def test_pipeline_produces_the_paper_table_and_a_by_construction_model_scores_100_percent(pipeline, capsys):
    root = pipeline
    model = {"weights": str(root / "tiny.pt"), "database": str(root / "db" / "e2e.json")}
    config = write_config(
        root / "recording.json",
        # Majority vote with one neighbour: each row's nearest vector is itself (a random-weight model
        # puts unrelated windows close together, so further neighbours would be noise votes).
        models=[{**model, "name": "sequence"}, {**model, "name": "vote", "method": "vote", "neighbors": 1}],
        recording_wavs=[
            str(root / "clean" / "clean.wav"),
            str(root / "noisy" / "low_t.wav"),
            str(root / "noisy" / "high_t.wav"),
        ],
        csv_path=str(root / "clean" / "playlist.csv"),
        true_songs=str(root / "songs"),
        query_lengths=[1, 2, 5],
        align_search_seconds=5.0,
        align_excerpt_seconds=4.0,
        device="cpu",
        output_dir=str(root / "report"),
    )
    assert run_script(evaluate_recording.SCHEMA, "recording", evaluate_recording.main, ["--config", config]) == 0

    printed = capsys.readouterr().out
    assert "| query (s) / recording | clean | low_t | high_t |" in printed
    document = json.loads((root / "report" / "results.json").read_text())
    cells = document["cells"]
    assert len(cells) == 2 * 3 * 3
    for cell in cells:
        if cell["condition"] == "clean":
            assert cell["accuracy_mean"] == 1.0 and cell["exact_mean"] == 1.0, cell["model"]
    # 1 s queries: floor(8 / 1) + floor(6.5 / 1) + floor(7 / 1) = 21, none straddling two songs.
    one_second = next(c for c in cells if c["condition"] == "clean" and c["query_seconds"] == 1.0)
    assert one_second["queries"] == 21 and one_second["unknown_queries"] == 0
    # The lead-in was found by cross-correlation in the clean recording, to the sample.
    truth = document["metadata"]["ground_truth"]
    assert truth["clean"][0]["start"] == LEAD_IN
    assert abs(truth["high_t"][0]["start"] - LEAD_IN) < 0.02  # plus the room's direct-path delay
    for name in ("config.json", "results.md", "results.csv", "accuracy.png", "run.log"):
        assert (root / "report" / name).stat().st_size > 0
    assert "song 1 starts at 1.500 s" in (root / "report" / "run.log").read_text()


def test_a_playlist_song_missing_from_the_database_counts_as_out_of_database(pipeline):
    root = pipeline
    order = [entry.song for entry in read_playlist(root / "clean" / "playlist.csv")]
    first_seconds = SONG_SECONDS[int(order[0][5])]
    second_seconds = SONG_SECONDS[int(order[1][5])]
    write_wav(root / "extra" / "stranger.wav", synth_song(4.0, 99))
    playlist = root / "with_stranger.csv"
    # A stranger (not indexed) said to play where the first song really plays, and the first song said
    # to play where the second really plays: explicit start/end times, no cross-correlation.
    second_start = LEAD_IN + first_seconds
    playlist.write_text(
        f"song,start,end\n{root / 'extra' / 'stranger.wav'},{LEAD_IN},{LEAD_IN + 4.0}\n"
        f"{order[0]},{second_start},{second_start + second_seconds}\n"
    )
    config = write_config(
        root / "recording_stranger.json",
        models=[{"weights": str(root / "tiny.pt"), "database": str(root / "db" / "e2e.json"), "threshold": 0.99}],
        recording_wavs=[str(root / "clean" / "clean.wav")],
        csv_path=str(playlist),
        true_songs=str(root / "songs"),
        query_lengths=[2],
        device="cpu",
        output_dir=str(root / "report_stranger"),
    )
    assert run_script(evaluate_recording.SCHEMA, "recording", evaluate_recording.main, ["--config", config]) == 0
    (cell,) = json.loads((root / "report_stranger" / "results.json").read_text())["cells"]
    assert cell["unknown_queries"] == 2 and cell["queries"] == int(second_seconds // 2)
    # The stranger's queries are the first song's audio: matched with score 1 above the threshold.
    assert cell["false_match_mean"] == 1.0
    # The mislabelled song's queries are the second song's audio: every answer is "wrong".
    assert cell["accuracy_mean"] == 0.0


def test_slicing_shared_embeddings_gives_the_answers_of_embedding_each_query_alone(pipeline):
    root = pipeline
    answers = {}
    for shared in (True, False):
        config = write_config(
            root / f"recording_shared_{shared}.json",
            models=[{"weights": str(root / "tiny.pt"), "database": str(root / "db" / "e2e.json")}],
            recording_wavs=[str(root / "noisy" / "high_t.wav")],
            csv_path=str(root / "noisy" / "truth.csv"),
            true_songs=str(root / "songs"),
            query_lengths=[2, 2.5],  # 2.5 s is five hops: sliced too
            shared_embeddings=shared,
            timing_queries=2,
            device="cpu",
            output_dir=str(root / f"report_shared_{shared}"),
        )
        assert run_script(evaluate_recording.SCHEMA, "recording", evaluate_recording.main, ["--config", config]) == 0
        cells = json.loads((root / f"report_shared_{shared}" / "results.json").read_text())["cells"]
        answers[shared] = [
            [(q["predicted_song"], q["predicted_offset"], round(q["score"], 4)) for q in cell["per_query"]]
            for cell in cells
        ]
        timed = [q["inference_ms"] is not None for q in cells[0]["per_query"]]
        assert timed == ([True, True] + [False] * (len(timed) - 2) if shared else [True] * len(timed))
    assert answers[True] == answers[False]
