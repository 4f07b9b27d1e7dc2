"""The trainer's configuration keys: the seed README's flat JSON plus optional keys with defaults."""

from __future__ import annotations

from common.config import Key, Schema

SCHEMA = Schema(
    "training/trainer.py",
    [
        Key("epochs", "int", min=1, help="number of epochs; also the length of the cosine learning-rate schedule"),
        Key("patience", "int", min=1, help="stop after this many epochs without a lower validation loss"),
        Key("batch_size", "int", min=1, help="pairs per step N (2N views per step), summed over all processes"),
        Key(
            "model_name",
            "filename",
            help="file name of the best checkpoint in output_path (.pt added if missing; no folder part)",
        ),
        Key("optimizer", "choice", choices=("Lamb", "Adam"), help="Lamb (torch-optimizer) or Adam"),
        Key("output_path", "path", help="folder for checkpoints, log, metrics and curves (created)"),
        Key("data_path", "path", must_exist=True, help="folder of songs; relative list entries resolve against it"),
        Key("lr", "float", help="base learning rate; the optimizer uses lr * batch_size / 640"),
        Key("background_noise_train", "path", must_exist=True, help="folder of training background noises"),
        Key("background_noise_val", "path", must_exist=True, help="folder of validation background noises"),
        Key("impulse_responses_train", "path", must_exist=True, help="folder of training impulse responses"),
        Key("impulse_responses_val", "path", must_exist=True, help="folder of validation impulse responses"),
        Key(
            "train_pickle",
            "path",
            None,
            must_exist=True,
            help="training song list (.pkl list, .json list or .txt lines); null: every audio file under data_path",
        ),
        Key(
            "val_pickle",
            "path",
            None,
            must_exist=True,
            help="validation song list; null: a val_fraction of the training songs is held out",
        ),
        Key("model_str", "choice", choices=("fingerprinter", "audsearch"), help="architecture"),
        Key("freq_cut_bool", "bool", help="apply the cut-off frequency augmentation (p = 0.4)"),
        Key("seed", "int", 0, min=0, help="seed of the model initialisation, pair draws and validation set"),
        Key("num_workers", "int", 2, min=0, help="DataLoader worker processes per training process"),
        Key("device", "choice", "auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA when present"),
        Key("threads", "int", None, min=1, help="torch CPU threads per process (null: torch's default, one per core)"),
        Key("amp", "bool", False, help="bfloat16 mixed precision on CUDA (ignored on CPU)"),
        Key("width", "float", 1.0, help="channel multiplier; 1.0 is the published model"),
        Key("temperature", "float", 0.05, help="NT-Xent temperature"),
        Key("spec_aug", "bool", True, help="SpecAugment on the positive log-mels (p = 0.33)"),
        Key("resume", "bool", False, help="continue from the last checkpoint in output_path if there is one"),
        Key(
            "init_weights",
            "path",
            None,
            must_exist=True,
            help="start from this checkpoint's weights (same model_str and width) with a fresh optimizer and "
            "schedule, e.g. to train a shipped model further; a resumable last checkpoint takes precedence",
        ),
        Key("cache_dir", "path", None, help="decoded-audio cache folder; null: output_path/cache"),
        Key("val_fraction", "float", 0.1, help="share of songs held out for validation when val_pickle is null"),
        Key("max_val_songs", "int", None, min=1, help="use at most this many validation songs (null: all)"),
        Key(
            "windows_per_song",
            "int",
            1,
            min=1,
            help="training pairs per song per epoch, at distinct random windows (1: the reference's epoch)",
        ),
        Key(
            "val_windows_per_song",
            "int",
            1,
            min=1,
            help="fixed validation pairs per validation song (distinct windows)",
        ),
        Key("max_minutes", "float", None, help="end the run cleanly after the epoch that passes this wall time"),
        Key(
            "schedule_minutes",
            "float",
            None,
            min=0.001,
            help="cosine learning rate over this many minutes of wall time, set every step; the run ends, "
            "mid-epoch, when they are up (null: the cosine over epochs)",
        ),
        Key("progress", "bool", True, help="progress bars"),
    ],
)
