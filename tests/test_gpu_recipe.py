"""Training packs and the GPU recipe, on the CPU: a tiny built folder -> a pack (.tar) -> a timed run."""

from __future__ import annotations

import csv
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from common.audio import find_audio_files, write_wav
from common.config import validate
from data_prep.make_pack import main as make_pack_main
from data_prep.manifest import ManifestRow, write_manifest
from data_prep.pack import PACK_FIELDNAMES, SCHEMA, choose_rows, make_pack, opus_compression_level
from models.checkpoint import load_checkpoint
from tests.signals import synth_song
from training.gpu_recipe import EPOCH_PAIRS, recipe_config
from training.gpu_recipe import main as recipe_main
from training.loop import FINAL_LR, wall_clock_lr

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = [
    "--set",
    "device=cpu",
    "--set",
    "amp=false",
    "--set",
    "width=0.125",
    "--set",
    "batch_size=4",
    "--set",
    "num_workers=0",
    "--set",
    "val_windows_per_song=2",
    "--set",
    "progress=false",
]


def _row(file: str, seconds: float, package: str) -> ManifestRow:
    return ManifestRow(
        file, seconds, package, "1.0", f"usr/share/{file}", "mix", "GPL-2", f"licences/{package}.copyright", "0" * 40
    )


@pytest.fixture
def built(tmp_path):
    """A tiny folder laid out as data_prep/prepare_data.py writes one (8 songs, noise, IRs, manifests)."""
    root = tmp_path / "built"
    rng = np.random.default_rng(0)
    music = []
    for index in range(8):
        name = f"music/train/game-music__song{index}.wav"
        write_wav(root / name, synth_song(4.0, seed=index))
        music.append(_row(name, 4.0, "game-music"))
    write_manifest(root / "music/train.csv", music[:6])
    write_manifest(root / "music/val.csv", music[6:])
    (root / "train.pkl").write_bytes(pickle.dumps([Path(row.file).name for row in music[:6]]))
    (root / "val.pkl").write_bytes(pickle.dumps([Path(row.file).name for row in music[6:]]))
    for split in ("train", "val"):
        noise, impulses = [], []
        for index in range(3):
            name = f"noise/background_{split}/ambience__n{index}.wav"
            write_wav(root / name, (0.1 * rng.standard_normal(12000)).astype("f4"))
            noise.append(_row(name, 1.5, "ambience"))
            name = f"impulse/impulse_{split}/room__{split}_{index}.wav"
            write_wav(root / name, (0.5 * np.exp(-np.arange(400) / 60.0) * rng.standard_normal(400)).astype("f4"))
            impulses.append(
                ManifestRow(name, 0.05, "generated", "pyroomacoustics", "shoebox", "mix", "generated", "", "")
            )
        write_manifest(root / f"noise/background_{split}.csv", noise)
        write_manifest(root / f"impulse/impulse_{split}.csv", impulses)
    (root / "licences").mkdir()
    for package in ("game-music", "ambience"):
        (root / "licences" / f"{package}.copyright").write_text("License: GPL-2\n")
    return root


def pack_config(built: Path, output: Path, **changes) -> dict:
    data = {
        "data_dir": str(built),
        "output_dir": str(output),
        "music_hours": 12 / 3600,  # three 4 s songs
        "val_music_hours": 8 / 3600,
        "noise_hours": 1 / 3600,
        "val_noise_hours": 1 / 3600,
        "impulse_files": 2,
        "val_impulse_files": 2,
        "workers": 1,
        **changes,
    }
    return validate(data, SCHEMA)


def test_opus_bitrates_map_onto_libsndfiles_compression_levels():
    assert opus_compression_level(256) == 0.0 and opus_compression_level(6) == 1.0
    assert opus_compression_level(18) == pytest.approx(0.952)


def test_files_are_drawn_whole_by_seed_until_the_hours_are_reached():
    rows = [ManifestRow(f"s{i}.wav", 600.0, "p", "1", "", "mix", "", "", "") for i in range(10)]
    chosen = choose_rows(rows, 0.5, by_hours=True, seed=0, stream=0)
    assert len(chosen) == 3 and chosen == sorted(chosen, key=lambda row: row.file)  # 3 x 10 min reach 0.5 h
    assert chosen == choose_rows(rows, 0.5, by_hours=True, seed=0, stream=0)
    assert chosen != choose_rows(rows, 0.5, by_hours=True, seed=1, stream=0)
    assert len(choose_rows(rows, 4, by_hours=False, seed=0, stream=0)) == 4
    assert len(choose_rows(rows, 100.0, by_hours=True, seed=0, stream=0)) == 10  # all there is


def test_the_wall_clock_schedule_is_a_cosine_from_lr_eff_to_the_final_rate():
    assert wall_clock_lr(1e-3, 0.0, 10.0) == pytest.approx(1e-3)
    assert wall_clock_lr(1e-3, 5.0, 10.0) == pytest.approx((1e-3 + FINAL_LR) / 2)
    assert wall_clock_lr(1e-3, 10.0, 10.0) == wall_clock_lr(1e-3, 99.0, 10.0) == pytest.approx(FINAL_LR)


def test_a_pack_holds_opus_music_and_noise_flac_impulses_a_manifest_and_a_relative_config(built, tmp_path):
    summary = make_pack(pack_config(built, tmp_path / "pack"))
    pack = tmp_path / "pack"
    assert {name: values["files"] for name, values in summary["sets"].items()} == {
        "music_train": 3,
        "music_val": 2,
        "noise_train": 1,
        "noise_val": 1,
        "impulse_train": 2,
        "impulse_val": 2,
    }
    assert json.loads((pack / "pack.json").read_text()) == summary
    assert not list(tmp_path.glob(".pack*"))  # the temporary folder was renamed into place
    song = next((pack / "music/train").iterdir())
    info = sf.info(str(song))
    assert (song.suffix, info.format, info.subtype, info.samplerate, info.channels) == (".ogg", "OGG", "OPUS", 8000, 1)
    assert info.frames == 4 * 8000  # Opus keeps the length exactly
    assert sf.info(str(next((pack / "impulse/train").iterdir()))).format == "FLAC"
    assert len(find_audio_files(pack / "noise/train")) == 1  # the augmentation folders find .ogg files
    with open(pack / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == PACK_FIELDNAMES and len(rows) == 11
    assert all((pack / row["file"]).exists() for row in rows)
    assert all((pack / row["licence_file"]).exists() for row in rows if row["licence_file"])
    assert {row["built_file"] for row in rows if row["set"] == "music_val"} <= {
        "music/train/game-music__song6.wav",
        "music/train/game-music__song7.wav",
    }
    config = json.loads((pack / "training_config.json").read_text())
    assert not any(Path(value).is_absolute() for value in config.values() if isinstance(value, str))
    listed = (pack / "train.txt").read_text().split() + (pack / "val.txt").read_text().split()
    assert all((pack / config["data_path"] / entry).exists() for entry in listed) and len(listed) == 5
    assert (tmp_path / "pack.tar").stat().st_size > summary["megabytes"] * 1e6 * 0.9


def test_a_bad_data_folder_or_bitrate_is_a_one_line_error(built, tmp_path, capsys):
    (built / "noise/background_val.csv").unlink()
    config = tmp_path / "pack.json"
    config.write_text(json.dumps({"data_dir": str(built), "output_dir": str(tmp_path / "pack")}))
    assert make_pack_main(["--config", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "background_val.csv" in error and "\n" not in error
    assert make_pack_main(["--config", str(config), "--set", "music_kbps=300"]) == 2
    assert "music_kbps" in capsys.readouterr().err


def test_the_recipe_trains_from_a_packed_tar_for_the_given_minutes_and_writes_a_loadable_checkpoint(
    built, tmp_path, capsys
):
    make_pack(pack_config(built, tmp_path / "pack"))
    out = tmp_path / "run"
    # 0.05 min = 3 s of schedule; windows_per_song 500 makes an epoch far longer, so the clock ends it.
    assert recipe_main([str(tmp_path / "pack.tar"), "0.05", str(out), *TINY_RUN, "--set", "windows_per_song=500"]) == 0
    assert (out / "pack" / "pack" / "pack.json").exists()  # the .tar was unpacked into the output folder
    config = json.loads((out / "gpu_recipe.json").read_text())
    assert (config["optimizer"], config["schedule_minutes"], config["windows_per_song"]) == ("Lamb", 0.05, 500)
    assert config["lr"] * 512 / 640 == pytest.approx(1e-3)  # the recipe's lr_eff at its batch of 512
    best = load_checkpoint(out / "fingerprinter_gpu.pt")
    assert best["model_str"] == "fingerprinter" and best["width"] == 0.125
    rows = [json.loads(line) for line in (out / "fingerprinter_gpu_metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["pairs_per_second"] > 0 and rows[0]["minutes"] >= 0.05
    log = (out / "fingerprinter_gpu.log").read_text()
    assert "cosine over 0.05 minutes" in log and "schedule_minutes 0.05 done" in log
    assert (out / "fingerprinter_gpu_curves.png").exists()
    last = load_checkpoint(out / "fingerprinter_gpu_last.pt")
    assert last["optimizer_state"]["param_groups"][0]["lr"] < config["lr"] * 4 / 640  # the cosine went down
    # Then the whitening: the pack's 3 training songs of 4 s are too few windows for it, which the run says.
    printed = capsys.readouterr().out
    assert f"whitening not fitted: {out / 'gpu_recipe.json'}: key 'train_pickle' gives 21 windows" in printed
    assert not (out / "fingerprinter_gpu_whitened.pt").exists()


def test_the_shell_entry_reports_a_missing_pack_in_one_line(tmp_path):
    result = subprocess.run(
        ["bash", str(REPO / "scripts/train_gpu.sh"), str(tmp_path / "nothing"), "1"],
        capture_output=True,
        text=True,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    assert result.returncode == 2 and result.stderr.strip() == f"error: {tmp_path / 'nothing'}: training pack not found"


def test_the_published_recipe_sizes_an_epoch_from_the_packs_songs(built, tmp_path):
    make_pack(pack_config(built, tmp_path / "pack", tar=False))
    config = recipe_config(tmp_path / "pack", 30.0, tmp_path / "run", [])
    assert (config["width"], config["batch_size"], config["amp"], config["device"]) == (1.0, 512, True, "cuda")
    assert config["windows_per_song"] == math.ceil(EPOCH_PAIRS / 3) and config["num_workers"] >= 1
    assert Path(config["data_path"]) == tmp_path / "pack" / "music"
