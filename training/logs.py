"""Training logs: a line per epoch on the console and in a log file, JSON-lines metrics, a PNG of the curves."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from common.atomic import atomic_write_text, save_figure


class RunLog:
    """Writes only on the main process; ``enabled=False`` makes every call a no-op (other ranks)."""

    def __init__(self, log_path: Path, enabled: bool = True):
        self.log_path = Path(log_path)
        self.enabled = enabled
        if enabled:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def line(self, text: str) -> None:
        """Print ``text`` and append it, time-stamped, to the log file."""
        if not self.enabled:
            return
        print(text, flush=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {text}\n")


def format_epoch(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch'] + 1}/{epochs}  train loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
        f"val top-1 {row['val_top1']:.3f} (chance {row['chance']:.3f})  lr {row['lr']:.2e}  "
        f"{row['seconds']:.1f} s  {row['pairs_per_second']:.1f} pairs/s{'  *best' if row['best'] else ''}"
    )


def write_metrics(path: Path, history: list[dict]) -> None:
    """The whole history as JSON lines, rewritten atomically (a resumed run never duplicates an epoch)."""
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in history))


def read_metrics(path: Path) -> list[dict]:
    """The history ``write_metrics`` wrote (empty when the file does not exist yet)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def plot_curves(path: Path, history: list[dict], title: str) -> None:
    """Loss (train, val) and validation top-1 with the chance level, per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] + 1 for row in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [row["train_loss"] for row in history], label="train")
    loss_axis.plot(epochs, [row["val_loss"] for row in history], label="validation")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("NT-Xent loss")
    loss_axis.legend()
    loss_axis.grid(alpha=0.3)
    accuracy_axis.plot(epochs, [row["val_top1"] for row in history], label="validation top-1", color="C2")
    accuracy_axis.plot(epochs, [row["chance"] for row in history], "--", color="gray", label="chance (1 / pairs)")
    accuracy_axis.set_xlabel("epoch")
    accuracy_axis.set_ylabel("top-1 retrieval accuracy")
    accuracy_axis.set_ylim(0, 1)
    accuracy_axis.legend()
    accuracy_axis.grid(alpha=0.3)
    figure.suptitle(title)
    save_figure(figure, path)
