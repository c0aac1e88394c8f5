"""The training loop: data, model, optimiser, per-epoch metrics, atomic checkpoints, resume.

Everything random is a function of the config's seed: initialisation and connections of the seed,
the shuffle of epoch e of (seed, e), the Gumbel samples of step s of (seed, s). A resumed run
therefore continues exactly as if it had never stopped, and every rank of a distributed run draws the
same Gumbel samples.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from logicforge.errors import LogicforgeError
from logicforge.fileio import atomic_path, write_json, write_text
from logicforge.netlist import analysis, gates, reference
from logicforge.train import cpu_kernel
from logicforge.train import data as datasets
from logicforge.train import distill
from logicforge.train import functional as F
from logicforge.train.connections import bit_pixels, grid_pairs, image_side, local_pairs
from logicforge.train.encoding import fit_thresholds, pool_thresholds
from logicforge.train.export import lut_to_netlist, to_netlist
from logicforge.train.lut_model import LutNet
from logicforge.train.model import LogicNet

CHECKPOINT = "checkpoint.pt"
#: Per gate op, whether it reads both inputs: what the wire penalty pushes away from and the fine-tune
#: keeps training (wires, inversions and constants are what the netlist passes remove).
TWO_INPUT = torch.tensor(gates.READS_BOTH)


def temperature_at(cfg: dict, epoch: int) -> float:
    """The Gumbel temperature during ``epoch`` (0-based) under the configured schedule."""
    start, end = cfg["gumbel_temperature"], cfg["gumbel_temperature_end"]
    if end is None or cfg["epochs"] <= 1:
        return start
    t = epoch / (cfg["epochs"] - 1)
    if cfg["gumbel_schedule"] == "linear":
        return start + (end - start) * t
    if cfg["gumbel_schedule"] == "exponential":
        return start * (end / start) ** t
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * t))


def _seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (p & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


class Trainer:
    def __init__(self, cfg: dict, run_dir: Path, *, progress: bool = True, rank: int = 0, world: int = 1,
                 epoch_hook=None, estimator=None):
        """``epoch_hook(trainer, metrics)``: called on rank 0 after each epoch's evaluation, before the
        checkpoint; it may add entries to ``metrics`` (the experiment runner's Hessian traces).
        ``estimator``: None, or a callable netlist -> dict with ``lcs`` (and ``luts``, ``ffs``), the
        hardware cost model passed in by the command layer (train/ imports no hardware code)."""
        self.epoch_hook = epoch_hook
        self.write_plots = True
        self.cfg, self.run_dir, self.progress, self.rank, self.world = cfg, Path(run_dir), progress, rank, world
        self.estimator = estimator
        self.device = self._device()
        self._set_threads()
        if self.device.type == "cpu":
            cpu_kernel.keep_freed_memory()  # reuse the step's large buffers, whatever the backend
        ds = datasets.load_dataset(cfg["dataset"], cfg["data_dir"])
        self.x_val = self.y_val = None
        if cfg.get("val_fraction"):  # thresholds and training see only what is left
            ds, self.x_val, self.y_val = datasets.hold_out(ds, cfg["val_fraction"])
        self.dataset = ds
        if cfg["encoding"].get("inputs_from"):
            self.thresholds = pool_thresholds(cfg["encoding"]["inputs_from"], features=ds.features,
                                              feature_width=ds.feature_width, runs_dir=self.run_dir.parent,
                                              quiet=not progress, may_train=world == 1)
        else:
            self.thresholds = fit_thresholds(ds.x_train, cfg["encoding"]["thresholds"], cfg["encoding"]["method"])
        if not any(self.thresholds):
            raise LogicforgeError(f"{cfg['dataset']}: every feature is constant; nothing to encode")
        self.bits_train = torch.from_numpy(reference.thermometer(ds.x_train, self.thresholds))
        self.bits_test = torch.from_numpy(reference.thermometer(ds.x_test, self.thresholds))
        self.y_train = torch.from_numpy(ds.y_train)
        self.y_test = torch.from_numpy(ds.y_test)
        classes = len(ds.class_names)
        self.teacher = None  # (training samples, classes) teacher logits, aligned with y_train
        kd = cfg.get("distill") or {}
        if kd.get("teacher"):
            net = distill.load_teacher(kd["teacher"], features=ds.features, feature_width=ds.feature_width,
                                       classes=classes)
            self.teacher = distill.teacher_logits(net, ds.x_train)
        group = cfg["group_size"] or max(1, (cfg["widths"] or [cfg["width"]])[-1] // classes)
        self.lut = cfg.get("node", "gate") == "lut4"  # the config rejects gate-only keys with it
        if self.lut:
            local = {}
            if cfg["wiring_radius"]:
                side = image_side(ds.features, "wiring_radius")
                pixel = bit_pixels(self.thresholds)
                local = dict(radius=cfg["wiring_radius"], side=side, input_pos=torch.stack([pixel // side,
                                                                                           pixel % side], 1))
            self.model = LutNet(self.bits_train.shape[1], classes, widths=cfg["widths"], group_size=group,
                                tau=cfg["tau"], seed=cfg["seed"], learn_wiring=cfg["learn_wiring"], **local)
        else:
            self._gate_model(cfg, classes, group)
        self.model.to(self.device)
        # fused: one kernel per step for all parameters (CPU and CUDA), the same update as the default
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"], fused=True)
        self.ddp = None
        if world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model)
        self.epoch = 0  # epochs completed
        self.step = 0
        self.frozen: list[torch.Tensor] | None = None  # per layer, the gates the fine-tune keeps (finetune_epochs)
        self.history: list[dict] = []
        self.train_seconds = 0.0

    def _gate_model(self, cfg: dict, classes: int, group: int) -> None:
        self.model = LogicNet(
            self.bits_train.shape[1], classes, layers=cfg["layers"], width=cfg["width"], group_size=group,
            tau=cfg["tau"], mode=cfg["mode"], seed=cfg["seed"], init=cfg["init"],
            residual_logit=cfg["residual_logit"], backend=self._backend(),
            connections="unique" if cfg["connections"] in ("local", "grid") else cfg["connections"],
            widths=cfg["widths"],
        )
        if cfg["connections"] == "local":
            first = self.model.layers[0]
            ia, ib = local_pairs(self.thresholds, first.out_dim, cfg["local_radius"],
                                 torch.Generator().manual_seed(_seed(cfg["seed"], 4)))
            first.ia.copy_(ia), first.ib.copy_(ib)
        if cfg["connections"] == "grid":  # the first layer as for local with the same seed, then every layer
            pairs = grid_pairs(self.thresholds, [layer.out_dim for layer in self.model.layers], cfg["local_radius"],
                               torch.Generator().manual_seed(_seed(cfg["seed"], 4)))
            for layer, (ia, ib) in zip(self.model.layers, pairs):
                layer.ia.copy_(ia), layer.ib.copy_(ib)
        self.model.cage_margin = cfg["cage_margin"]

    # -- setup helpers --------------------------------------------------------------------------
    def _device(self) -> torch.device:
        want = self.cfg["device"]
        if want == "cuda" and not torch.cuda.is_available():
            raise LogicforgeError("device: cuda requested but no CUDA GPU is available")
        if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
            return torch.device("cuda", self.rank % max(1, torch.cuda.device_count()))
        return torch.device("cpu")

    def _set_threads(self) -> None:
        """Small steps lose more to thread hand-offs than they gain, most of all on a busy machine."""
        threads = self.cfg["threads"]
        if threads is None and max(self.cfg["widths"] or [self.cfg["width"]]) * self.cfg["batch_size"] < 1_000_000:
            threads = 1
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(threads)

    def _backend(self) -> str:
        b = self.cfg["backend"]
        if b == "auto":
            return F.backend_for(self.device)
        if b == "triton" and self.device.type != "cuda":
            raise LogicforgeError("backend: triton needs a CUDA device (set device: cuda)")
        if b == "cpp" and self.device.type != "cpu":
            raise LogicforgeError("backend: cpp runs on the CPU only")
        return b

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT

    def state(self) -> dict:
        st = {"config": self.cfg, "epoch": self.epoch, "step": self.step, "history": self.history,
              "train_seconds": self.train_seconds, "model": self.model.state_dict(),
              "optimizer": self.optimizer.state_dict()}
        if self.frozen is not None:
            st["frozen"] = [f.cpu() for f in self.frozen]
        return st

    def save_checkpoint(self) -> None:
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(self.state(), tmp)

    def load_checkpoint(self) -> None:
        path = self.checkpoint_path
        if not path.exists():
            raise LogicforgeError(f"{path}: no checkpoint to resume from")
        try:
            st = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:  # a corrupt or foreign file
            raise LogicforgeError(f"{path}: cannot load checkpoint ({e.__class__.__name__})") from None
        keys = ("config", "epoch", "step", "history", "train_seconds", "model", "optimizer")
        if not isinstance(st, dict) or any(k not in st for k in keys) or not isinstance(st["config"], dict):
            raise LogicforgeError(f"{path}: not a logicforge checkpoint (expected a dict with {', '.join(keys)})")
        saved = dict(st["config"])
        mine = dict(self.cfg)
        # the hardware budget does not change what is trained; a fine-tune may be added to a finished run
        for key in ("epochs", "hardware", "finetune_epochs", "finetune_lr"):
            saved.pop(key, None), mine.pop(key, None)
        for key in ("val_fraction", "wire_penalty", "wire_penalty_ramp"):  # checkpoints from before these keys: their default
            if key not in saved and mine.get(key) == 0.0:
                mine.pop(key)
        for key, default in (("node", "gate"), ("learn_wiring", True)):  # likewise
            if key not in saved and mine.get(key) == default:
                mine.pop(key)
        enc_saved, enc_mine = saved.get("encoding"), mine.get("encoding")
        if isinstance(enc_saved, dict) and isinstance(enc_mine, dict) and "inputs_from" not in enc_saved \
                and enc_mine.get("inputs_from") is None:  # likewise
            mine["encoding"] = {k: v for k, v in enc_mine.items() if k != "inputs_from"}
        if "distill" not in saved and not (mine.get("distill") or {}).get("teacher"):
            mine.pop("distill", None)
        if "frozen" in st and st["config"].get("epochs") != self.cfg["epochs"]:
            raise LogicforgeError(f"{path}: the run is in its fine-tune, which began after epoch "
                                  f"{st['config'].get('epochs')}; keep epochs at that and change finetune_epochs")
        if saved != mine:
            diff = sorted(str(k) for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
            raise LogicforgeError(f"{path}: config differs from the checkpoint's in {', '.join(diff)} "
                                  "(only epochs, finetune_epochs, finetune_lr and hardware may change on --resume)")
        try:
            epoch, step = int(st["epoch"]), int(st["step"])
            history, train_seconds = list(st["history"]), float(st["train_seconds"])
            if epoch < 0 or step < 0 or len(history) != epoch:
                raise ValueError(f"epoch {epoch}, step {step}, {len(history)} history entries")
            self.model.load_state_dict(st["model"])
            if "frozen" in st:
                frozen = [torch.as_tensor(f, dtype=torch.bool) for f in st["frozen"]]
                if [f.shape for f in frozen] != [(layer.out_dim,) for layer in self.model.layers]:
                    raise ValueError("the fine-tune's frozen gates do not match the layers")
                self.start_finetune(frozen)
            self.optimizer.load_state_dict(st["optimizer"])
        except (TypeError, ValueError, KeyError, RuntimeError, IndexError, AttributeError) as e:
            raise LogicforgeError(f"{path}: damaged checkpoint ({e.__class__.__name__}: "
                                  f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
        self.epoch, self.step = epoch, step
        self.history, self.train_seconds = history, train_seconds

    # -- training -------------------------------------------------------------------------------
    def batches(self, epoch: int):
        """Global batches of epoch ``epoch``; each rank gets its contiguous share of every batch."""
        n = len(self.y_train)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(self.cfg["seed"], 1, epoch)))
        bs = self.cfg["batch_size"]
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            share = idx.tensor_split(self.world)[self.rank]
            yield len(idx), share

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.y_train) / self.cfg["batch_size"])

    def lr_at(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based) under the configured schedule; in the
        fine-tune (the steps after ``epochs``), ``finetune_lr`` with a cosine decay to 0."""
        main = self.cfg["epochs"] * self.steps_per_epoch()
        if step >= main:
            total = max(1, self.cfg["finetune_epochs"] * self.steps_per_epoch() - 1)
            return self.cfg["finetune_lr"] * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - main) / total)))
        lr = self.cfg["lr"]
        if self.cfg["lr_schedule"] == "constant":
            return lr
        total = max(1, self.cfg["epochs"] * self.steps_per_epoch() - 1)
        t = min(1.0, step / total)
        end = lr * self.cfg["lr_end_factor"]
        return end + (lr - end) * 0.5 * (1 + math.cos(math.pi * t))

    def start_finetune(self, frozen: list[torch.Tensor] | None = None) -> None:
        """Enter the fine-tune (``finetune_epochs``): freeze every gate that does not read both inputs
        (or the given per-layer masks, from a checkpoint), switch the layers to hard straight-through
        and forget the optimiser's moments."""
        if frozen is None:
            two = TWO_INPUT.to(self.device)
            frozen = [~two[layer.ops()] for layer in self.model.layers]
        self.frozen = [f.to(self.device) for f in frozen]
        for layer in self.model.layers:
            layer.mode = "hard_st"
        self.model.mode = "hard_st"
        self.optimizer.state.clear()

    def finetuning(self) -> bool:
        return self.frozen is not None

    def train_epoch(self) -> float:
        model = self.ddp or self.model
        self.model.train()
        if not self.lut:
            self.model.temperature = 1.0 if self.finetuning() else temperature_at(self.cfg, self.epoch)
        total, count, hits, seen = 0.0, 0, 0, 0
        bar = None
        if self.progress and self.rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=len(self.y_train), desc=f"epoch {self.epoch + 1}/{self.total_epochs()}",
                       unit="sample", leave=False, dynamic_ncols=True, disable=None)  # None: off when not a terminal
        for global_n, idx in self.batches(self.epoch):
            x = self.bits_train[idx].to(self.device, torch.float32, non_blocking=True)
            y = self.y_train[idx].to(self.device)
            scores = model(x, noise_seed=_seed(self.cfg["seed"], 2, self.step))
            # sum over this rank's samples / global batch, times world: DDP's gradient mean then
            # equals the gradient of the mean loss over the whole global batch.
            if self.teacher is None:
                loss = torch.nn.functional.cross_entropy(scores, y, reduction="sum")
            else:
                kd = self.cfg["distill"]
                loss = distill.loss(scores, y, self.teacher[idx].to(self.device), kd["weight"], kd["temperature"])
            loss = loss * (self.world / global_n)
            if self.cfg.get("wire_penalty") and not self.finetuning():
                loss = loss + self.wire_penalty_at(self.step) * self.two_input_probability()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.finetuning():  # frozen gates get no gradient, so Adam never moves them
                for layer, frozen in zip(self.model.layers, self.frozen):
                    layer.logits.grad[frozen] = 0.0
            if self.cfg["lr_schedule"] != "constant" or self.finetuning():
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr_at(self.step)
            self.optimizer.step()
            self.step += 1
            total += loss.item() * global_n / self.world
            hits += int((scores.argmax(1) == y).sum())
            seen += len(y)
            count += global_n
            if bar is not None:
                bar.update(global_n)
                bar.set_postfix(loss=f"{total / count:.4f}", acc=f"{hits / max(1, seen):.3f}")
        if bar is not None:
            bar.close()
        if self.world > 1:  # each rank summed only its own share's losses
            import torch.distributed as dist

            t = torch.tensor([total], dtype=torch.float64, device=self.device)
            dist.all_reduce(t)
            total = float(t.item())
        return total / max(1, count)

    def wire_penalty_at(self, step: int) -> float:
        """The wire penalty's weight at optimiser step ``step`` (0-based): ``wire_penalty``, reached
        linearly over the first ``wire_penalty_ramp`` of all steps."""
        w, ramp = self.cfg["wire_penalty"], self.cfg.get("wire_penalty_ramp", 0.0)
        if not ramp:
            return w
        ramp_steps = ramp * self.cfg["epochs"] * self.steps_per_epoch()
        return w * min(1.0, step / ramp_steps)

    def two_input_probability(self) -> torch.Tensor:
        """Mean over all neurons of softmax(logits) on the gates that read both inputs: the
        ``wire_penalty`` term. Wires, inversions and constants (FALSE, A, B, NOT A, NOT B, TRUE) are
        what the netlist passes remove."""
        mask = getattr(self, "_two_input_mask", None)
        if mask is None:
            mask = TWO_INPUT.to(self.device, torch.float32)
            self._two_input_mask = mask
        total = sum((torch.softmax(layer.logits, dim=-1) @ mask).sum() for layer in self.model.layers)
        return total / sum(layer.out_dim for layer in self.model.layers)

    @torch.no_grad()
    def train_mode_accuracy(self) -> float:
        """Test accuracy of the network as trained: sampled gates (gumbel) or relaxed gates (softmax);
        for LUT nodes the training forward is the discrete network itself."""
        self.model.train()
        correct = 0
        for start in range(0, len(self.y_test), 4096):
            x = self.bits_test[start:start + 4096].to(self.device, torch.float32)
            scores = self.model(x, noise_seed=_seed(self.cfg["seed"], 3, self.epoch))
            correct += int((scores.argmax(1).cpu() == self.y_test[start:start + 4096]).sum())
        return correct / len(self.y_test)

    def netlist(self):
        ds = self.dataset
        if self.lut:
            return lut_to_netlist(self.model, features=ds.features, feature_width=ds.feature_width,
                                  thresholds=self.thresholds, class_names=ds.class_names,
                                  extra={"producer": {"tool": "logicforge", "dataset": ds.name, "node": "lut4"}})
        return to_netlist(self.model, features=ds.features, feature_width=ds.feature_width,
                          thresholds=self.thresholds, class_names=ds.class_names,
                          extra={"producer": {"tool": "logicforge", "dataset": ds.name, "mode": self.cfg["mode"]}})

    def evaluate(self, loss: float, seconds: float) -> dict:
        from logicforge.train.utilisation import utilisation

        net = self.netlist()
        discrete = reference.accuracy(net, self.dataset.x_test, self.dataset.y_test)
        val = None if self.x_val is None else reference.accuracy(net, self.x_val, self.y_val)
        train_mode = self.train_mode_accuracy()
        if self.lut:
            use = self.model.utilisation()
        else:
            use = utilisation([layer.logits for layer in self.model.layers], net)
        return {
            "epoch": self.epoch, "step": self.step, "loss": loss, "finetune": self.finetuning(),
            "test_acc_train_mode": train_mode, "test_acc_discrete": discrete, "val_acc_discrete": val,
            "discretization_gap": train_mode - discrete,
            "unused_gate_fraction": use["unused_fraction"],
            "constant_gate_fraction": use["constant_fraction"],
            "uncollapsed_fraction": use["uncollapsed_fraction"],
            "op_histogram_per_layer": use["op_histogram_per_layer"],
            "gumbel_temperature": self.model.temperature if self.cfg["mode"] != "softmax" and not self.lut else None,
            "lr": self.optimizer.param_groups[0]["lr"],
            "epoch_seconds": seconds,
            "gate_histogram": lut_histogram(net) if self.lut else analysis.op_histogram(net),
            "estimate": self._estimate(net),
        }

    def _estimate(self, net) -> dict | None:
        if self.estimator is None:
            return None
        est = self.estimator(net)
        return {k: est[k] for k in ("lcs", "luts", "ffs") if k in est}

    def check_budget(self) -> None:
        """LogicforgeError (one line, with the best estimate) when the final netlist exceeds
        ``hardware.max_lcs``."""
        hw = self.cfg.get("hardware") or {}
        budget = hw.get("max_lcs")
        ests = [(h["estimate"]["lcs"], h["epoch"]) for h in self.history if h.get("estimate")]
        if budget is None or not ests:
            return
        final = ests[-1][0]
        if final <= budget:
            return
        best, epoch = min(ests)
        raise LogicforgeError(
            f"hardware budget not met: the final netlist needs about {final} logic cells on "
            f"{hw.get('board')}, the budget is {budget} (best estimate {best} LCs at epoch {epoch}); "
            f"shrink the network (width, layers, group_size, thresholds) or raise hardware.max_lcs")

    def total_epochs(self) -> int:
        return self.cfg["epochs"] + self.cfg.get("finetune_epochs", 0)

    def fit(self) -> dict:
        while self.epoch < self.total_epochs():
            if self.epoch >= self.cfg["epochs"] and not self.finetuning():
                self.start_finetune()
            t0 = time.perf_counter()
            loss = self.train_epoch()
            seconds = time.perf_counter() - t0
            self.train_seconds += seconds
            self.epoch += 1
            if self.rank == 0:
                m = self.evaluate(loss, seconds)
                if self.epoch_hook is not None:
                    self.epoch_hook(self, m)
                self.history.append(m)
                self.save_checkpoint()
                write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in self.history))
                if self.progress:
                    est = f"  est {m['estimate']['lcs']} LCs" if m.get("estimate") else ""
                    val = "" if m["val_acc_discrete"] is None else f"  val {m['val_acc_discrete']:.4f}"
                    print(f"epoch {m['epoch']:4d}  loss {loss:.4f}  train-mode {m['test_acc_train_mode']:.4f}  "
                          f"discrete {m['test_acc_discrete']:.4f}{val}  gap {m['discretization_gap']:+.4f}  "
                          f"unused {m['unused_gate_fraction']:.3f}{est}  {seconds:.2f}s", flush=True)
        return self.finish() if self.rank == 0 else {}

    def finish(self) -> dict:
        net = self.netlist()
        net.save(self.run_dir / "netlist.json")
        with atomic_path(self.run_dir / "test_set.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, x=self.dataset.x_test, y=self.dataset.y_test)
        last = self.history[-1]
        summary = {
            "name": self.cfg["name"], "dataset": self.cfg["dataset"],
            "mode": None if self.lut else self.cfg["mode"],  # a lut4 network samples nothing
            **({"node": "lut4", "wiring_radius": self.cfg["wiring_radius"]} if self.lut else {}),
            "test_acc_discrete": last["test_acc_discrete"],
            "test_acc_train_mode": last["test_acc_train_mode"],
            "discretization_gap": last["discretization_gap"],
            "val_acc_discrete": last.get("val_acc_discrete"),
            "val_samples": 0 if self.y_val is None else len(self.y_val),
            "unused_gate_fraction": last["unused_gate_fraction"],
            "gates": net.num_gates, "layers": len(net.layers), "encoded_inputs": net.num_inputs,
            "epochs": self.epoch, "steps": self.step, "train_seconds": round(self.train_seconds, 3),
            "seconds_per_epoch": round(self.train_seconds / max(1, self.epoch), 4),
            "backend": "torch" if self.lut else self.model.layers[0].backend, "device": str(self.device), "world_size": self.world,
            "gate_histogram": last["gate_histogram"],
            "estimate": last.get("estimate"),
            "hardware": self.cfg.get("hardware"),
        }
        write_json(self.run_dir / "summary.json", summary)
        if self.write_plots:
            from logicforge.train import plots

            plots.write_all(self.history, self.run_dir / "plots")
        self.check_budget()
        return summary


def lut_histogram(net) -> dict[str, int]:
    """``analysis.op_histogram`` of a LUT4 netlist with the wire nodes that forward signals to the head
    (``export.WIRE_TABLE`` on one signal) counted apart, as ``LUT4_wire``, from the learned ``LUT4``
    nodes."""
    from logicforge.netlist.format import LutLayer
    from logicforge.train.export import WIRE_TABLE

    hist = analysis.op_histogram(net)
    wires = sum(int(((l.table == WIRE_TABLE) & (l.ins == l.ins[:, :1]).all(1)).sum())
                for l in net.layers if isinstance(l, LutLayer))
    hist["LUT4"] = hist.get("LUT4", 0) - wires
    hist["LUT4_wire"] = wires
    return hist


def finished_run(run_dir: Path, cfg: dict) -> bool:
    """True if ``run_dir`` holds a completed run of exactly this config (its ``hardware`` block aside:
    a budget alone does not retrain)."""
    summary, saved = run_dir / "summary.json", run_dir / "config.yaml"
    if not (summary.exists() and saved.exists() and (run_dir / "netlist.json").exists()):
        return False
    same = {k: v for k, v in yaml.safe_load(saved.read_text()).items() if k != "hardware"} == \
        {k: v for k, v in cfg.items() if k != "hardware"}
    return same and json.loads(summary.read_text())["epochs"] == cfg["epochs"]


def train(cfg: dict, run_dir: Path, *, resume: bool = False, progress: bool = True, estimator=None) -> dict:
    """Train (or resume) a run in ``run_dir``; return its summary (rank 0) or {} (other ranks).

    ``estimator``: see ``Trainer``; with ``hardware.max_lcs`` set, a final netlist over the budget
    raises LogicforgeError after the results are written."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        run_dir = Path(run_dir)
        if not resume and (run_dir / CHECKPOINT).exists() and rank == 0:
            raise LogicforgeError(f"{run_dir}: already holds a run; pass --resume to continue it, "
                                  "or --name / a fresh directory for a new one")
        torch.manual_seed(cfg["seed"])
        trainer = Trainer(cfg, run_dir, progress=progress, rank=rank, world=world, estimator=estimator)
        if resume:
            trainer.load_checkpoint()
        elif rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text(run_dir / "config.yaml", _dump_yaml(cfg))
        summary = trainer.fit()
        if world > 1:  # rank 0 writes the results last; nobody leaves the group before it is done
            import gc

            import torch.distributed as dist

            dist.barrier()
            # the DistributedDataParallel wrapper holds the group: release it here, so that the group's
            # worker threads stop in destroy_process_group below and not at interpreter exit
            del trainer
            gc.collect()
        return summary
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _dump_yaml(cfg: dict) -> str:
    import yaml

    return yaml.safe_dump(cfg, sort_keys=False)
