"""The four training estimators (softmax, gumbel, hard_st, cage): their defining properties, and the
Triton path (under TRITON_INTERPRET=1) against the straightforward formulation (train/naive.py).

The C++ and PyTorch paths are compared with the naive formulation in test_naive_equivalence.py.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from logicforge.netlist import gates  # noqa: E402
from logicforge.train import functional as F  # noqa: E402
from logicforge.train.model import LogicNet  # noqa: E402
from logicforge.train.naive import NaiveLogicNet  # noqa: E402

IN_BITS, CLASSES = 24, 3


def _net(mode, backend="torch", seed=4, init="gaussian"):
    return LogicNet(IN_BITS, CLASSES, layers=3, width=30, group_size=6, tau=2.0, mode=mode, seed=seed,
                    init=init, backend=backend)


def _batch(seed=0, n=16):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, IN_BITS, generator=g) > 0.5).float(), torch.randint(0, CLASSES, (n,), generator=g)


def test_cage_temperature_follows_the_top_two_margin():
    logits = torch.tensor([[5.0, 1.0, 0.0] + [0.0] * 13,   # margin 4 -> 0.5 * 4 / 2 = 1.0
                           [1.0, 0.5, 0.0] + [0.0] * 13,   # margin 0.5 < 2 -> the base temperature 0.5
                           [3.0, 3.0, 0.0] + [0.0] * 13])  # tie -> 0.5
    t = F.cage_temperature(logits, 0.5, 2.0)
    torch.testing.assert_close(t, torch.tensor([[1.0], [0.5], [0.5]]))
    assert not t.requires_grad


def test_cage_keeps_a_confident_neurons_gradient():
    """A saturated neuron: hard_st's softmax gradient vanishes, cage's does not."""
    logits = torch.zeros(1, gates.NUM_OPS)
    logits[0, gates.A] = 30.0
    coeffs = F.coeff_matrix()
    grads = {}
    for mode in ("hard_st", "cage"):
        lg = logits.clone().requires_grad_(True)
        F.hard_coefficients(lg, mode, coeffs, temperature=1.0, cage_margin=2.0).sum().backward()
        grads[mode] = lg.grad.abs().max().item()
    assert grads["hard_st"] < 1e-10 < 1e-3 < grads["cage"]


@pytest.mark.parametrize("mode", ["hard_st", "cage"])
def test_noise_free_estimators_train_the_discrete_network(mode):
    """hard_st and cage: the train-mode forward pass is the eval (argmax, netlist) network: zero gap."""
    net = _net(mode)
    x, _ = _batch(1)
    with torch.no_grad():
        train_out = net.train()(x, noise_seed=3)
        eval_out = net.eval()(x)
    assert torch.equal(train_out, eval_out)


def test_gumbel_without_noise_is_hard_st():
    logits = torch.randn(10, gates.NUM_OPS, generator=torch.Generator().manual_seed(0))
    coeffs = F.coeff_matrix()
    outs = []
    for mode, noise in (("gumbel", torch.zeros_like(logits)), ("hard_st", None)):
        lg = logits.clone().requires_grad_(True)
        c = F.hard_coefficients(lg, mode, coeffs, noise=noise, temperature=0.5)
        (c * torch.arange(40.0).view(10, 4)).sum().backward()
        outs.append((c.detach(), lg.grad))
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1])


@pytest.mark.parametrize("mode", ["softmax", "gumbel", "hard_st", "cage"])
def test_triton_path_matches_naive(mode):
    """The Triton kernels (interpreted on the CPU) under each estimator: forward and logit gradients."""
    pytest.importorskip("triton", reason="triton is not installed (pip install '.[dev]')")
    net = _net(mode, backend="triton")
    naive = NaiveLogicNet.like(net)
    net.temperature = naive.temperature = 0.8
    x, y = _batch(2)
    outs = [m(x, noise_seed=11) for m in (net, naive)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for m, o in zip((net, naive), outs):
        torch.nn.functional.cross_entropy(o, y).backward()
    for (name, p), q in zip(net.named_parameters(), naive.parameters()):
        assert p.grad.abs().max() > 0, name
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
