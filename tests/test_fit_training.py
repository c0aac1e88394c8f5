"""Training options for small, hardware-sized networks: per-layer widths, local first-layer connections and
grid connections (every layer local)."""

import numpy as np
import pytest
import torch

from logicforge.errors import LogicforgeError
from logicforge.netlist import format as nf
from logicforge.netlist import reference
from logicforge.train import config
from logicforge.train.connections import grid_pairs, image_side, local_pairs
from logicforge.train.trainer import Trainer, train

SMALL = {"epochs": 2, "batch_size": 64, "lr": 0.05, "tau": 2.0, "mode": "softmax", "init": "gaussian",
         "encoding": {"thresholds": 3}, "backend": "torch", "group_size": 4}


def _bit_owner(thresholds):
    """For every encoded bit, its pixel."""
    return np.array([f for f, ts in enumerate(thresholds) for _ in ts])


@pytest.mark.parametrize("radius", [0, 1, 3])
def test_local_pairs_stay_within_the_radius_and_use_only_live_pixels(radius):
    rng = np.random.default_rng(radius)
    side = 10
    # pixels with 0..3 thresholds, a dead border column included
    thresholds = [[] if f % side == 0 else sorted(rng.choice(255, rng.integers(1, 4), replace=False).tolist())
                  for f in range(side * side)]
    owner = _bit_owner(thresholds)
    ia, ib = local_pairs(thresholds, 500, radius, torch.Generator().manual_seed(1))
    assert ia.shape == ib.shape == (500,)
    assert int(ia.min()) >= 0 and int(max(ia.max(), ib.max())) < len(owner)
    pa, pb = owner[ia.numpy()], owner[ib.numpy()]
    assert np.all(np.abs(pa // side - pb // side) <= radius)
    assert np.all(np.abs(pa % side - pb % side) <= radius)
    # centres cycle through the live pixels: each is used 5 or 6 times for 500 gates over 90 pixels
    counts = np.bincount(pa, minlength=side * side)
    live = np.array([len(t) > 0 for t in thresholds])
    assert np.all(counts[~live] == 0) and counts[live].min() >= 5 and counts[live].max() <= 6
    if radius == 0:
        assert np.array_equal(pa, pb)
    else:
        assert np.mean(pa != pb) > 0.5


def test_local_pairs_are_a_function_of_the_generator_seed():
    th = [[10, 100]] * 64
    a = local_pairs(th, 100, 2, torch.Generator().manual_seed(3))
    b = local_pairs(th, 100, 2, torch.Generator().manual_seed(3))
    c = local_pairs(th, 100, 2, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_local_connections_need_square_images(make_cfg):
    assert image_side(784) == 28
    with pytest.raises(LogicforgeError, match="not a square"):
        image_side(30)
    with pytest.raises(LogicforgeError, match="not a square"):
        Trainer(make_cfg(SMALL, dataset="breast_cancer", connections="local"), "unused", progress=False)


def test_widths_config_is_checked():
    assert config.resolve({"widths": [30, 20]}, "t")["widths"] == [30, 20]
    for bad in ([], [10, 0], [10, 2.5], "10", [True]):
        with pytest.raises(config.ConfigError, match="widths"):
            config.resolve({"widths": bad}, "t")
    with pytest.raises(config.ConfigError, match="local_radius"):
        config.resolve({"local_radius": -1}, "t")


def test_tree_widths_and_local_connections_train_and_export_exactly(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, widths=[160, 80], connections="local", local_radius=1, epochs=6)
    summary = train(cfg, tmp_path / "run", progress=False)
    net = nf.load(tmp_path / "run" / "netlist.json")
    assert [len(layer.op) for layer in net.layers] == [160, 80, 40]
    assert net.group_size == 4
    # first layer reads bits of pixels at most one row/column apart (digits are 8 x 8)
    owner = _bit_owner(net.thresholds)
    pa, pb = owner[net.layers[0].a], owner[net.layers[0].b]
    assert np.all(np.abs(pa // 8 - pb // 8) <= 1) and np.all(np.abs(pa % 8 - pb % 8) <= 1)
    _assert_checkpoint_matches_netlist(Trainer(cfg, tmp_path / "run", progress=False), net, cfg, summary)


def _grid_positions(thresholds, pairs):
    """Per layer, the pixel positions of the inputs a and b and of the gates (a gate sits at its input a)."""
    pos = _bit_owner(thresholds)
    out = []
    for ia, ib in pairs:
        pa, pb = pos[np.asarray(ia)], pos[np.asarray(ib)]
        out.append((pa, pb))
        pos = pa
    return out


def _sparse_thresholds(side, seed):
    """Pixels with 0..3 thresholds, a dead first column included."""
    rng = np.random.default_rng(seed)
    return [[] if f % side == 0 else sorted(rng.choice(255, rng.integers(1, 4), replace=False).tolist())
            for f in range(side * side)]


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_grid_pairs_stay_within_the_radius_in_every_layer(radius):
    side = 10
    thresholds = _sparse_thresholds(side, radius)
    dims = [500, 700, 700, 300, 40]  # wider, equal, narrower
    pairs = grid_pairs(thresholds, dims, radius, torch.Generator().manual_seed(2))
    assert [len(ia) for ia, _ in pairs] == [len(ib) for _, ib in pairs] == dims
    # layer 1 is exactly local_pairs with the same generator state
    first = local_pairs(thresholds, dims[0], radius, torch.Generator().manual_seed(2))
    assert torch.equal(pairs[0][0], first[0]) and torch.equal(pairs[0][1], first[1])
    in_dims = [sum(map(len, thresholds))] + dims[:-1]
    for (ia, ib), n_in, (pa, pb) in zip(pairs, in_dims, _grid_positions(thresholds, pairs)):
        assert ia.dtype == ib.dtype == torch.int64
        assert int(min(ia.min(), ib.min())) >= 0 and int(max(ia.max(), ib.max())) < n_in
        assert np.all(np.abs(pa // side - pb // side) <= radius)
        assert np.all(np.abs(pa % side - pb % side) <= radius)
        assert np.all(pa % side != 0)  # the dead column has no bits, hence no gates
        if radius == 0:
            assert np.array_equal(pa, pb)
        else:
            assert np.mean(pa != pb) > 0.5  # b is not merely a's pixel
    for ia, ib in pairs[1:]:
        assert not torch.any(ia == ib)  # every later-layer pixel holds several gates: never one signal twice


def test_grid_pairs_read_every_previous_gate_when_the_layer_is_not_narrower():
    thresholds = [[50, 150]] * 36
    dims = [200, 200, 450, 100]
    pairs = grid_pairs(thresholds, dims, 1, torch.Generator().manual_seed(5))
    for (ia, _), n_in, n_out in zip(pairs[1:], dims[:-1], dims[1:]):
        reads = np.bincount(ia.numpy(), minlength=n_in)
        if n_out >= n_in:  # input a cycles through permutations: each gate read floor or ceil(n_out / n_in) times
            assert reads.min() == n_out // n_in and reads.max() == -(-n_out // n_in)
        else:  # a narrower layer reads distinct gates as input a
            assert reads.max() == 1 and reads.sum() == n_out


def test_grid_pairs_are_a_function_of_the_generator_seed():
    th = [[10, 100]] * 64
    a = grid_pairs(th, [300, 300, 40], 2, torch.Generator().manual_seed(3))
    b = grid_pairs(th, [300, 300, 40], 2, torch.Generator().manual_seed(3))
    c = grid_pairs(th, [300, 300, 40], 2, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for pa, pb in zip(a, b) for x, y in zip(pa, pb))
    for pa, pc in zip(a, c):
        assert not torch.equal(pa[0], pc[0]) and not torch.equal(pa[1], pc[1])


def test_grid_connections_need_square_images_with_thresholds(make_cfg):
    with pytest.raises(LogicforgeError, match="^connections: grid needs square single-channel images; 30 features"):
        grid_pairs([[1]] * 30, [10], 1, torch.Generator())
    with pytest.raises(LogicforgeError, match="^connections: grid: no pixel has a threshold$"):
        grid_pairs([[]] * 16, [10, 10], 1, torch.Generator())
    with pytest.raises(LogicforgeError, match="connections: grid needs square"):
        Trainer(make_cfg(SMALL, dataset="breast_cancer", connections="grid"), "unused", progress=False)
    with pytest.raises(config.ConfigError, match="connections"):
        config.resolve({"connections": "grids"}, "t")
    assert config.resolve({"connections": "grid"}, "t")["connections"] == "grid"


def test_grid_connections_train_and_export_a_netlist_the_reference_accepts(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, widths=[160, 160], connections="grid", local_radius=1, epochs=6, seed=3)
    summary = train(cfg, tmp_path / "run", progress=False)
    net = nf.load(tmp_path / "run" / "netlist.json")
    assert [len(layer.op) for layer in net.layers] == [160, 160, 40]
    # every layer of the exported netlist reads gates at most one row/column from the gate (digits are 8 x 8)
    layers = [(torch.from_numpy(np.asarray(layer.a)), torch.from_numpy(np.asarray(layer.b))) for layer in net.layers]
    for pa, pb in _grid_positions(net.thresholds, layers):
        assert np.all(np.abs(pa // 8 - pb // 8) <= 1) and np.all(np.abs(pa % 8 - pb % 8) <= 1)
    # the same connections as grid_pairs draws for this seed (the trainer's generator)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    for layer, (ia, ib) in zip(trainer.model.layers, layers):
        assert torch.equal(layer.ia, ia) and torch.equal(layer.ib, ib)
    _assert_checkpoint_matches_netlist(trainer, net, cfg, summary)


def _assert_checkpoint_matches_netlist(trainer, net, cfg, summary):
    """The trained model's scores on the test set equal the exported netlist's (reference evaluator),
    and the run's reported accuracy is the netlist's, well above chance."""
    trainer.load_checkpoint()
    trainer.model.eval()
    with torch.no_grad():
        scores = trainer.model(trainer.bits_test.float())
    ref_scores, classes = reference.evaluate(net, trainer.dataset.x_test)
    np.testing.assert_allclose(scores.numpy() * cfg["tau"], ref_scores, atol=1e-4)
    assert summary["test_acc_discrete"] == pytest.approx(float(np.mean(classes == trainer.dataset.y_test)))
    assert summary["test_acc_discrete"] > 0.5  # chance is 0.1
