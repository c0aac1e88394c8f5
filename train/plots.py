"""PNG plots of a run's history: accuracy curves, the discretization gap, the gate histogram."""

from __future__ import annotations

from pathlib import Path

from logicforge.fileio import atomic_path


def write_all(history: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    epochs = [h["epoch"] for h in history]
    paths = []

    def save(fig, name):
        path = out / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["test_acc_train_mode"] for h in history], label="train mode")
    ax.plot(epochs, [h["test_acc_discrete"] for h in history], label="discrete (netlist)")
    if history and history[-1].get("val_acc_discrete") is not None:
        ax.plot(epochs, [h["val_acc_discrete"] for h in history], label="validation, discrete")
    ax.set(xlabel="epoch", ylabel="test accuracy", title="Accuracy")
    ax.legend(), ax.grid(alpha=0.3)
    save(fig, "accuracy.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [100 * h["discretization_gap"] for h in history])
    ax.axhline(0, color="gray", lw=0.8)
    ax.set(xlabel="epoch", ylabel="train-mode minus discrete (points)", title="Discretization gap")
    ax.grid(alpha=0.3)
    save(fig, "gap.png")

    hist = history[-1]["gate_histogram"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(range(len(hist)), list(hist.values()))
    ax.set_xticks(range(len(hist)), list(hist.keys()), rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="gates", title=f"Gate types after epoch {history[-1]['epoch']}")
    fig.tight_layout()
    save(fig, "gates.png")
    return paths
