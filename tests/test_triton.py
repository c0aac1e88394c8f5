"""The Triton (CUDA-path) kernels against the PyTorch path and the reference evaluator.

Runs on the CPU through Triton's interpreter (TRITON_INTERPRET=1, set before triton is imported), so
sizes are small; odd sizes exercise the masks, larger ones several tiles and batch splits.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed (pip install '.[dev]')")

from logicforge.errors import LogicforgeError  # noqa: E402
from logicforge.netlist import gates, generate, reference  # noqa: E402
from logicforge.train import functional as F  # noqa: E402
from logicforge.train import triton_kernels as tk  # noqa: E402
from logicforge.train import triton_packed as tp  # noqa: E402

# (in_dim, N, B): odd sizes, single elements, and several tiles in both axes (BLOCK_N 32, BLOCK_B 128)
SIZES = [(37, 23, 19), (1, 1, 1), (3, 1, 5), (40, 70, 300)]


def _layer(in_dim, n, b, seed, binary=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(in_dim, b, generator=g)
    if binary:
        x = (x > 0.5).float()
    ia = torch.randint(0, in_dim, (n,), generator=g)
    ib = torch.randint(0, in_dim, (n,), generator=g)
    coef = torch.randn(n, 4, generator=g)
    grad = torch.randn(n, b, generator=g)
    return x, ia, ib, coef, grad


@pytest.mark.parametrize("in_dim,n,b", SIZES)
def test_forward_matches_torch(in_dim, n, b):
    x, ia, ib, coef, _ = _layer(in_dim, n, b, seed=in_dim + n + b)
    y = tk.forward(x, ia, ib, coef)
    assert y.shape == (n, b)
    torch.testing.assert_close(y, F.forward_torch(x, ia, ib, coef), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["sorted", "atomic"])
@pytest.mark.parametrize("in_dim,n,b", SIZES)
def test_backward_matches_torch(in_dim, n, b, mode):
    x, ia, ib, coef, grad = _layer(in_dim, n, b, seed=7 * in_dim + n + b)
    gx, gcoef = tk.backward(x, ia, ib, coef, grad, gx_mode=mode)
    rgx, rgcoef = F.backward_torch(x, ia, ib, coef, grad)
    assert gx.shape == (in_dim, b) and gcoef.shape == (n, 4)
    torch.testing.assert_close(gx, rgx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gcoef, rgcoef, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("splits", [1, 2, 3])
def test_backward_batch_splits(splits):
    """The gcoef reduction gives the same sums however the batch is cut (B=300: 3 tiles of 128)."""
    x, ia, ib, coef, grad = _layer(40, 70, 300, seed=3)
    _, gcoef = tk.backward(x, ia, ib, coef, grad, splits=splits)
    torch.testing.assert_close(gcoef, F.backward_torch(x, ia, ib, coef, grad)[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["sorted", "atomic"])
def test_backward_shared_rows_and_unused_rows(mode):
    """a == b for every gate, many gates on one row, and rows no gate reads (their gradient is 0)."""
    x, _, _, coef, grad = _layer(9, 13, 21, seed=11)
    ia = torch.tensor([4] * 7 + [0, 2, 2, 8, 8, 4])
    ib = ia.clone()
    ib[7:] = torch.tensor([4, 0, 8, 2, 4, 4])
    gx, gcoef = tk.backward(x, ia, ib, coef, grad, gx_mode=mode)
    rgx, rgcoef = F.backward_torch(x, ia, ib, coef, grad)
    torch.testing.assert_close(gx, rgx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gcoef, rgcoef, rtol=1e-4, atol=1e-4)
    unused = [r for r in range(9) if r not in set(ia.tolist()) | set(ib.tolist())]
    assert unused and torch.all(gx[unused] == 0)
    assert torch.any(gx[4] != 0)


def _two_layer_grads(mode, backend, seed, in_dim=37, widths=(23, 11), b=19):
    """Two stacked logic layers in ``mode``; returns output and gradients of logits (and input)."""
    g = torch.Generator().manual_seed(seed)
    binary = mode == "gumbel"
    x = torch.rand(in_dim, b, generator=g)
    x = (x > 0.5).float() if binary else x.requires_grad_()
    dims = (in_dim, *widths)
    params = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        logits = torch.randn(d_out, gates.NUM_OPS, generator=g).requires_grad_()
        ia = torch.randint(0, d_in, (d_out,), generator=g)
        ib = torch.randint(0, d_in, (d_out,), generator=g)
        noise = F.gumbel_noise((d_out, gates.NUM_OPS), generator=g) if binary else None
        params.append((logits, ia, ib, noise))
    r = torch.randn(widths[-1], b, generator=g)

    h = x
    for logits, ia, ib, noise in params:
        coef = F.gate_weights(logits, mode, noise=noise) @ F.coeff_matrix()
        h = F.logic_layer(h, ia, ib, coef, binary=binary, backend=backend)
    (h * r).sum().backward()
    grads = [p[0].grad for p in params] + ([] if binary else [x.grad])
    return h.detach(), grads


@pytest.mark.parametrize("mode", ["gumbel", "softmax"])
def test_logic_layer_autograd_matches_torch(mode):
    """Through LogicLayerFunction: gumbel (0/1 inputs, one-hot gates, bit-saved input) and softmax."""
    y_t, g_t = _two_layer_grads(mode, "torch", seed=5)
    y_k, g_k = _two_layer_grads(mode, "triton", seed=5)
    if mode == "gumbel":
        assert set(torch.unique(y_t).tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(y_k, y_t, rtol=1e-5, atol=1e-5)
    assert len(g_k) == len(g_t)
    for a, b in zip(g_k, g_t):
        assert torch.any(b != 0)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


# -- packed-bit evaluation -----------------------------------------------------------------------

def test_minterm_masks_follow_truth_table():
    masks = tp.minterm_masks()
    for op in range(gates.NUM_OPS):
        for a in (0, 1):
            for b in (0, 1):
                assert int(masks[op, 2 * a + b]) == (-1 if gates.output(op, a, b) else 0)


def test_gate_layer_matches_apply_bitwise():
    rng = np.random.default_rng(1)
    words = rng.integers(0, 2**63, size=(10, 3), dtype=np.uint64) | (rng.integers(0, 2, size=(10, 3), dtype=np.uint64) << np.uint64(63))
    op = np.arange(37) % 16
    ia = rng.integers(0, 10, 37)
    ib = rng.integers(0, 10, 37)
    out = tp.gate_layer(torch.from_numpy(words.view(np.int64)), torch.from_numpy(op),
                        torch.from_numpy(ia), torch.from_numpy(ib))
    expect = gates.apply_bitwise(op, words[ia], words[ib])
    np.testing.assert_array_equal(out.numpy().view(np.uint64), expect)


def _netlist(seed, **kw):
    rng = np.random.default_rng(seed)
    net = generate.random_netlist(rng, **kw)
    net.layers[0].op = np.arange(len(net.layers[0])) % 16  # every op appears
    return net.validate(), rng


@pytest.mark.parametrize("n", [1, 63, 64, 130, 200])
def test_evaluate_packed_matches_reference(n):
    net, rng = _netlist(n, layer_widths=(37, 19))
    x = generate.random_features(rng, net, n)
    for ours, ref in zip(tp.layer_outputs_packed(net, torch.from_numpy(x)), reference.layer_outputs(net, x)):
        np.testing.assert_array_equal(ours.numpy(), ref.view(np.int64))
    scores, classes = tp.evaluate_packed(net, torch.from_numpy(x))
    ref_scores, ref_classes = reference.evaluate(net, x)
    np.testing.assert_array_equal(scores.numpy(), ref_scores)
    np.testing.assert_array_equal(classes.numpy(), ref_classes)


def test_evaluate_packed_ties_pick_smallest_class():
    """group_size 1 with 6 classes: most samples tie, and the smallest maximal class must win."""
    net, rng = _netlist(2, layer_widths=(20,), classes=6, group_size=1, features=5)
    x = generate.random_features(rng, net, 150)
    dn = tp.DeviceNetlist(net, "cpu")
    scores, classes = tp.evaluate_packed(dn, x)
    ref_scores, ref_classes = reference.evaluate(net, x)
    np.testing.assert_array_equal(scores.numpy(), ref_scores)
    np.testing.assert_array_equal(classes.numpy(), ref_classes)
    ties = (ref_scores == ref_scores.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert ties.any() and np.any(ref_classes[ties] > 0)


def test_evaluate_packed_empty_batch():
    net, _ = _netlist(3)
    scores, classes = tp.evaluate_packed(net, torch.zeros((0, net.features), dtype=torch.int64))
    assert scores.shape == (0, net.classes) and classes.shape == (0,)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((4, 5), dtype=np.int64), "features per sample"),
    (np.full((4, 6), 16, dtype=np.int64), "must lie in"),
    (np.zeros((4, 6), dtype=np.float32), "must be integers"),
    (np.zeros(6, dtype=np.int64), "2-D"),
])
def test_evaluate_packed_rejects_bad_input(bad, match):
    net, _ = _netlist(4)  # 6 features of width 4
    with pytest.raises(LogicforgeError, match=match):
        tp.evaluate_packed(net, torch.from_numpy(bad))
