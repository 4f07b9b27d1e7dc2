import numpy as np
import pytest

from common.playlist import PlaylistEntry, PlaylistError, playlist_files, read_playlist, write_playlist
from data_prep.impulses import place_in_room, simulate_rir
from evaluation.ground_truth import SongInterval, cut_queries, find_song_start, song_intervals
from evaluation.simulator import RecordingSimulator, concatenate_songs, noise_bed
from tests.signals import synth_song

SR = 8000


def test_cross_correlation_finds_a_lead_in_of_silence_through_room_and_noise():
    songs = [synth_song(seconds, seed) for seconds, seed in ((12.0, 1), (9.5, 2), (7.25, 3))]
    lead_in = 3.3
    playlist = concatenate_songs(songs, SR, lead_in_seconds=lead_in)
    rng = np.random.default_rng(0)
    room = simulate_rir(place_in_room((6.0, 4.5, 3.0), 0.512, 2.0, rng), SR)
    simulator = RecordingSimulator(sr=SR, room_impulse=room)
    noise = noise_bed([rng.standard_normal(SR * 5).astype(np.float32)], len(playlist.samples), rng)
    (recording,) = simulator.record(playlist, {"high_t": 0.0}, noise)
    true_start = lead_in + simulator.room_delay_samples() / SR

    start, ratio = find_song_start(recording.samples, songs[0], SR, search_seconds=10.0, excerpt_seconds=5.0)

    assert abs(start - true_start) < 0.005
    assert ratio > 1.5
    intervals = song_intervals(["a", "b", "c"], [len(s) / SR for s in songs], start, len(recording.samples) / SR)
    assert [interval.name for interval in intervals] == ["a", "b", "c"]
    assert abs(intervals[2].start - (true_start + 12.0 + 9.5)) < 0.01


def test_a_recording_that_starts_with_song_one_is_found_at_zero():
    song = synth_song(8.0, 5)
    recording = np.concatenate([song, synth_song(6.0, 6)])
    start, _ = find_song_start(recording, song, SR, search_seconds=5.0, excerpt_seconds=4.0)
    assert start == 0.0


def test_song_intervals_are_back_to_back_and_clipped_to_the_recording():
    intervals = song_intervals(["a", "b", "c"], [10.0, 20.0, 30.0], 2.0, recording_seconds=40.0)
    assert intervals == [SongInterval("a", 2.0, 12.0), SongInterval("b", 12.0, 32.0), SongInterval("c", 32.0, 40.0)]
    assert song_intervals(["a", "b"], [10.0, 5.0], 0.0, recording_seconds=10.0) == [SongInterval("a", 0.0, 10.0)]


def test_queries_never_straddle_two_songs_and_start_at_each_song_start():
    intervals = [SongInterval("a", 1.5, 8.0), SongInterval("b", 8.0, 11.0)]
    queries = cut_queries(intervals, 3.0)
    # a: 6.5 s -> 2 queries (the 0.5 s tail is unused); b: exactly 3 s -> 1 query.
    assert [(q.song, q.start, q.end, q.offset_in_song) for q in queries] == [
        ("a", 1.5, 4.5, 0.0),
        ("a", 4.5, 7.5, 3.0),
        ("b", 8.0, 11.0, 0.0),
    ]
    for query in queries:
        owner = next(i for i in intervals if i.name == query.song)
        assert owner.start <= query.start and query.end <= owner.end
    assert cut_queries([SongInterval("short", 0.0, 0.9)], 1.0) == []


def test_playlist_reads_the_reference_layout_and_the_header_layout(tmp_path):
    reference = tmp_path / "reference.csv"
    reference.write_text("Coldplay - Viva La Vida.wav\nBrenda Lee - Sweet's, Nothing.wav\n\n")
    assert read_playlist(reference) == [
        PlaylistEntry("Coldplay - Viva La Vida.wav"),
        PlaylistEntry("Brenda Lee - Sweet's, Nothing.wav"),
    ]
    timed = [PlaylistEntry("a.wav", 1.25, 10.0), PlaylistEntry("b, c.wav", 10.0, 21.5)]
    write_playlist(tmp_path / "timed.csv", timed)
    assert read_playlist(tmp_path / "timed.csv") == timed
    write_playlist(tmp_path / "plain.csv", [PlaylistEntry("a.wav")])
    assert (tmp_path / "plain.csv").read_text() == "song\na.wav\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("song,start,end\na.wav,1.0,\n", "row 2: need 0 <= start < end"),
        ("song,start,end\na.wav,1,2\nb.wav,,\n", "some songs but not all"),
        ("song,start,end\na.wav,5,2\n", "row 2"),
        ("song,start\na.wav,1\n", "both 'start' and 'end'"),
        ("song,start,end\na.wav,x,3\n", "not a number"),
        ("song,begin\na.wav,1\n", "unknown column"),
        ("", "empty"),
    ],
)
def test_a_bad_playlist_gives_a_message_naming_the_file_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PlaylistError, match=message) as error:
        read_playlist(path)
    assert str(path) in str(error.value)


def test_playlist_rows_resolve_to_song_files_and_a_missing_one_names_the_playlist(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    entries = [PlaylistEntry("a.wav"), PlaylistEntry(str(tmp_path / "a.wav"))]
    assert playlist_files(entries, tmp_path, "list.csv") == [tmp_path / "a.wav", tmp_path / "a.wav"]
    with pytest.raises(PlaylistError, match=r"^list.csv: song 'b.wav' not found in true_songs"):
        playlist_files([PlaylistEntry("b.wav")], tmp_path, "list.csv")
