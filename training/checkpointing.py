"""Best/last checkpoints and early stopping for the trainer."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.config import ConfigError, file_name_problem
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@dataclass
class EarlyStopping:
    """Stop when the validation loss has not improved for ``patience`` epochs in a row."""

    patience: int
    best_loss: float = float("inf")
    best_epoch: int = -1
    epochs_without_improvement: int = 0

    def update(self, val_loss: float, epoch: int) -> bool:
        """Record an epoch; True when it is a new best."""
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.epochs_without_improvement = val_loss, epoch, 0
            return True
        self.epochs_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.epochs_without_improvement >= self.patience

    def state_dict(self) -> dict:
        return {
            "patience": self.patience,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best_loss = state["best_loss"]
        self.best_epoch = state["best_epoch"]
        self.epochs_without_improvement = state["epochs_without_improvement"]


@dataclass
class RunFiles:
    """Where one training run writes: named after ``model_name`` inside ``output_path``."""

    output_path: Path
    model_name: str
    stem: str = field(init=False)

    def __post_init__(self):
        problem = file_name_problem(self.model_name)
        if problem:  # the files must stay inside output_path
            raise ConfigError(f"key 'model_name': {problem}")
        self.output_path = Path(self.output_path)
        self.stem = self.model_name[:-3] if self.model_name.endswith(".pt") else self.model_name

    @property
    def best(self) -> Path:
        return self.output_path / f"{self.stem}.pt"

    @property
    def last(self) -> Path:
        return self.output_path / f"{self.stem}_last.pt"

    @property
    def log(self) -> Path:
        return self.output_path / f"{self.stem}.log"

    @property
    def metrics(self) -> Path:
        return self.output_path / f"{self.stem}_metrics.jsonl"

    @property
    def curves(self) -> Path:
        return self.output_path / f"{self.stem}_curves.png"


def rng_state() -> dict:
    """Every global generator's state, as plain tensors/values (checkpoints load with weights_only)."""
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "numpy_key": None}
    numpy_state = np.random.get_state()
    state["numpy_key"] = torch.from_numpy(numpy_state[1].astype(np.int64))
    state["numpy_pos"] = int(numpy_state[2])
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy_key"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_best(files: RunFiles, model, identity: dict, config: dict, epoch: int, best: dict) -> None:
    """Weights + model facts + config + epoch + best figures; no optimizer state (small enough to ship)."""
    save_checkpoint(files.best, model, **identity, config=config, epoch=epoch, best=best)


def save_last(
    files: RunFiles,
    model,
    identity: dict,
    config: dict,
    epoch: int,
    best: dict,
    optimizer,
    scheduler,
    stopping: EarlyStopping,
    history: list[dict],
) -> None:
    """Everything needed to resume after ``epoch`` exactly."""
    save_checkpoint(
        files.last,
        model,
        **identity,
        config=config,
        epoch=epoch,
        best=best,
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict(),
        rng_state=rng_state(),
        extra={"early_stopping": stopping.state_dict(), "history": history},
    )


def load_last(files: RunFiles) -> dict | None:
    """The last checkpoint's payload, or None when the run has none yet."""
    if not files.last.is_file():
        return None
    payload = load_checkpoint(files.last)
    if "optimizer_state" not in payload:
        raise CheckpointError(f"{files.last}: holds no optimizer state, cannot resume from it")
    return payload
