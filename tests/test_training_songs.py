"""training.songs: song lists in pickle, text or JSON, resolved against data_path."""

import json
import pickle

import pytest

from common.config import ConfigError
from training.songs import find_songs, read_song_list


@pytest.mark.parametrize("suffix", [".pkl", ".txt", ".json"])
def test_song_lists_are_read_from_pickle_text_or_json_and_resolved_against_data_path(tmp_path, suffix):
    entries = ["a.wav", "sub/b.wav", "/abs/c.wav"]
    path = tmp_path / f"list{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps(entries))
    elif suffix == ".json":
        path.write_text(json.dumps(entries))
    else:
        path.write_text("# songs\n" + "\n".join(entries) + "\n\n")
    assert read_song_list(path, "/data") == ["/data/a.wav", "/data/sub/b.wav", "/abs/c.wav"]


def test_a_song_list_that_is_not_a_list_of_paths_is_a_config_error(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ConfigError, match="bad.pkl"):
        read_song_list(path, tmp_path)
    with pytest.raises(ConfigError, match="no audio files"):
        find_songs(tmp_path)
