"""Our fused logic layer trains exactly like the straightforward 16-op formulation (train/naive.py).

Same init, same batches, same Gumbel samples (same noise seeds), Adam for 20 steps: the loss sequences
agree to float tolerance and so do the final logits, in both modes and on both CPU backends.
"""

import pytest
import torch

from logicforge.netlist import gates
from logicforge.train import cpu_kernel
from logicforge.train.model import LogicNet
from logicforge.train.naive import NaiveLogicLayer, NaiveLogicNet

IN_BITS, CLASSES, LAYERS, WIDTH, GROUP, BATCH, STEPS, LR = 40, 4, 3, 64, 16, 32, 20, 0.05


def _backend(name):
    if name == "cpp" and not cpu_kernel.available():
        pytest.skip("the C++ kernel cannot be built on this machine (no compiler or ninja)")
    return name


def _nets(mode, backend, init="gaussian"):
    net = LogicNet(IN_BITS, CLASSES, layers=LAYERS, width=WIDTH, group_size=GROUP, tau=4.0, mode=mode, seed=3,
                   init=init, backend=backend)
    return net, NaiveLogicNet.like(net)


def _batches(seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(STEPS):
        yield (torch.rand(BATCH, IN_BITS, generator=g) > 0.5).float(), torch.randint(0, CLASSES, (BATCH,), generator=g)


def test_naive_net_has_logicnets_state_dict_and_init():
    net = LogicNet(IN_BITS, CLASSES, layers=LAYERS, width=WIDTH, group_size=GROUP, tau=4.0, seed=7)
    naive = NaiveLogicNet(IN_BITS, CLASSES, layers=LAYERS, width=WIDTH, group_size=GROUP, tau=4.0, seed=7)
    a, b = net.state_dict(), naive.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_naive_layer_evaluates_the_16_gates_on_bits():
    layer = NaiveLogicLayer(2, 1)
    layer.ia.fill_(0)
    layer.ib.fill_(1)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    ops = layer.all_gates(x)[:, 0, :]  # [4 input pairs, 16]
    for op in range(gates.NUM_OPS):
        for row, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            assert ops[row, op].item() == gates.output(op, a, b), (op, a, b)


@pytest.mark.parametrize("backend", ["torch", "cpp"])
@pytest.mark.parametrize("mode", ["gumbel", "softmax", "hard_st", "cage"])
def test_losses_match_naive_over_20_adam_steps(mode, backend):
    net, naive = _nets(mode, _backend(backend))
    opt_a = torch.optim.Adam(net.parameters(), lr=LR)
    opt_b = torch.optim.Adam(naive.parameters(), lr=LR)
    losses_a, losses_b = [], []
    for step, (x, y) in enumerate(_batches()):
        for model, opt, losses in ((net, opt_a, losses_a), (naive, opt_b, losses_b)):
            loss = torch.nn.functional.cross_entropy(model(x, noise_seed=1000 + step), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    torch.testing.assert_close(torch.tensor(losses_a), torch.tensor(losses_b), rtol=1e-4, atol=1e-6)
    # The parameters moved (so the comparison is not vacuous) ...
    start, _ = _nets(mode, backend)
    moved = max((p - q).abs().max().item() for p, q in zip(net.parameters(), start.parameters()))
    assert moved > 10 * LR
    # ... and ended in the same place. Adam turns float-rounding differences of near-zero gradients
    # into updates of up to ~lr * 1e-3, hence the absolute tolerance (a wrong gate moves logits by ~lr).
    for (name, p), q in zip(net.named_parameters(), naive.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=5e-4, msg=name)


@pytest.mark.parametrize("backend", ["torch", "cpp"])
@pytest.mark.parametrize("mode", ["gumbel", "softmax", "hard_st", "cage"])
def test_gradients_match_naive_at_step_0(mode, backend):
    """Each estimator's forward and backward against the straightforward [batch, N, 16] formulation."""
    net, naive = _nets(mode, _backend(backend))
    net.temperature = naive.temperature = 0.7  # a non-unit backward temperature is applied the same way
    x, y = next(_batches(seed=5))
    outs = [model(x, noise_seed=42) for model in (net, naive)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for model, out in zip((net, naive), outs):
        torch.nn.functional.cross_entropy(out, y).backward()
    for (name, p), q in zip(net.named_parameters(), naive.parameters()):
        assert p.grad.abs().max() > 0, name
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-7, msg=name)


def test_gumbel_samples_are_shared_and_keyed_by_seed():
    """Equal seeds give equal forwards; a different seed samples different gates."""
    net, naive = _nets("gumbel", "torch")
    x, _ = next(_batches(seed=9))
    torch.testing.assert_close(net(x, noise_seed=5), naive(x, noise_seed=5))
    torch.testing.assert_close(net(x, noise_seed=5), net(x, noise_seed=5))
    assert not torch.equal(net(x, noise_seed=5), net(x, noise_seed=6))


def test_eval_mode_is_the_discrete_network():
    net, naive = _nets("softmax", "torch")
    net.eval(), naive.eval()
    x, _ = next(_batches(seed=11))
    with torch.no_grad():
        torch.testing.assert_close(net(x), naive(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("in_dim,n,batch", [(5, 7, 1), (13, 20, 13), (40, 33, 64), (100, 80, 77)])
def test_cpp_kernels_match_the_torch_path(in_dim, n, batch):
    """The C++ kernels on odd sizes (partial bytes), a gate reading one row twice, and both backward forms."""
    from logicforge.train import functional as F

    _backend("cpp")
    g = torch.Generator().manual_seed(in_dim)
    x = (torch.rand(in_dim, batch, generator=g) > 0.5).float()
    ia, ib = torch.randint(0, in_dim, (n,), generator=g), torch.randint(0, in_dim, (n,), generator=g)
    ib[:3] = ia[:3]
    coef, grad = torch.randn(n, 4, generator=g), torch.randn(n, batch, generator=g)
    m = cpu_kernel.module()
    packed = m.pack_bits(x)
    assert torch.equal(packed, F.pack_bits(x)) and torch.equal(m.unpack_bits(packed, batch), x)
    torch.testing.assert_close(cpu_kernel.forward(x, ia, ib, coef), F.forward_torch(x, ia, ib, coef))
    ref_gx, ref_gc = F.backward_torch(x, ia, ib, coef, grad)
    gx, gc = cpu_kernel.backward_bits(packed, batch, ia, ib, coef, grad)
    torch.testing.assert_close(gx, ref_gx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gc, ref_gc, rtol=1e-5, atol=1e-5)
    none, gc = cpu_kernel.backward_bits(packed, batch, ia, ib, coef, grad, need_gx=False)
    assert none is None
    torch.testing.assert_close(gc, ref_gc, rtol=1e-5, atol=1e-5)
    soft = x * 0.6 + 0.2  # real-valued activations (softmax mode)
    ref_gx, ref_gc = F.backward_torch(soft, ia, ib, coef, grad)
    gx, gc = cpu_kernel.backward(soft, ia, ib, coef, grad)
    torch.testing.assert_close(gx, ref_gx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gc, ref_gc, rtol=1e-5, atol=1e-5)
