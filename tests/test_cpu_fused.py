"""The fused C++ paths of the training step against their plain PyTorch definitions.

- the counter-based Gumbel noise (``functional.hashed_gumbel``, its C++ twin ``cpu_kernel.gumbel_noise``);
- the gate coefficients of both modes and their gradients (``gumbel_coef``, ``softmax_coef``,
  ``coef_backward``) against ``GumbelCoefficients`` and ``softmax(logits) @ COEFFS`` under autograd;
- the whole gumbel network on packed bits (``GumbelNetFunction``) against the per-layer path with the
  same coefficients: scores and every layer's coefficient gradient, on batch sizes with partial words.
"""

import math
import os

import pytest
import torch

from logicforge.train import cpu_kernel
from logicforge.train import functional as F
from logicforge.train.model import LogicNet

pytestmark = pytest.mark.skipif(not cpu_kernel.available(),
                                reason="the C++ kernel cannot be built on this machine (no compiler or ninja)")


def test_hashed_gumbel_is_standard_gumbel_and_keyed():
    g = F.hashed_gumbel(1 << 16, F.noise_key(7, 1))  # 2^20 samples
    euler_gamma, std = 0.5772156649, math.pi / math.sqrt(6)
    assert g.mean().item() == pytest.approx(euler_gamma, abs=0.01)
    assert g.std().item() == pytest.approx(std, abs=0.01)
    # P(G <= 0) = exp(-1) for a standard Gumbel
    assert (g <= 0).float().mean().item() == pytest.approx(math.exp(-1), abs=0.003)
    assert torch.isfinite(g).all()
    assert torch.equal(g, F.hashed_gumbel(1 << 16, F.noise_key(7, 1)))  # a function of the key
    assert not torch.equal(g[:100], F.hashed_gumbel(100, F.noise_key(7, 2)))  # layers differ
    assert not torch.equal(g[:100], F.hashed_gumbel(100, F.noise_key(8, 1)))  # seeds differ
    assert torch.equal(g[:100], F.hashed_gumbel(100, F.noise_key(7, 1)))  # a prefix does not depend on rows


@pytest.mark.parametrize("fast_log", [False, True])
@pytest.mark.parametrize("seed,layer,rows", [(0, 0, 1), (123456789, 5, 8000), (-3, 2, 77)])
def test_cpp_noise_equals_the_definition(seed, layer, rows, fast_log):
    key = F.noise_key(seed, layer)
    ref = F.hashed_gumbel(rows, key)
    got = cpu_kernel.gumbel_noise(rows, *key, fast_log=fast_log)
    # Same uniforms; the two logs may round the last bit differently.
    torch.testing.assert_close(got, ref, rtol=2e-6, atol=1e-6)


def test_layer_noise_is_the_hashed_noise_per_layer():
    net = LogicNet(40, 4, layers=3, width=64, group_size=16, tau=4.0, seed=3)
    for i, (n, layer) in enumerate(zip(F.layer_noise(net.layers, 11), net.layers)):
        torch.testing.assert_close(n, F.hashed_gumbel(layer.out_dim, F.noise_key(11, i)), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 0.37, 4.0])
def test_gumbel_coefficients_match_the_autograd_definition(temperature):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(300, 16, generator=g, requires_grad=True)
    noise = F.hashed_gumbel(300, F.noise_key(1, 0))
    coeffs = F.coeff_matrix()
    ref = F.GumbelCoefficients.apply(logits, noise, temperature, coeffs)
    got = F.CppGumbelCoefficients.apply(logits, noise, temperature, coeffs)
    assert torch.equal(got, ref)  # the sampled gate's exact coefficients
    w = torch.randn(300, 4, generator=g)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), logits)
    (g_got,) = torch.autograd.grad((got * w).sum(), logits)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-5, atol=1e-6)


def test_gumbel_coefficients_take_the_first_maximum():
    logits = torch.zeros(3, 16)
    logits[1, [4, 9]] = 2.0  # a tie: torch.argmax takes index 4
    logits[2, 15] = 1.0
    coef = F.CppGumbelCoefficients.apply(logits, torch.zeros(3, 16), 1.0, F.coeff_matrix())
    assert torch.equal(coef, F.coeff_matrix()[torch.tensor([0, 4, 15])])


def test_softmax_coefficients_match_the_autograd_definition():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(257, 16, generator=g, requires_grad=True)
    ref = torch.softmax(logits, dim=-1) @ F.coeff_matrix()
    got = F.CppSoftmaxCoefficients.apply(logits, F.coeff_matrix())
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    w = torch.randn(257, 4, generator=g)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), logits)
    (g_got,) = torch.autograd.grad((got * w).sum(), logits)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", [0, 1, 13, 64, 77, 130])
def test_packed_network_equals_the_per_layer_path(batch):
    """Scores and gradients of GumbelNetFunction against LogicLayerFunction + GroupSum (torch backend)."""
    net = LogicNet(40, 4, layers=3, width=64, group_size=16, tau=4.0, seed=3, init="gaussian", backend="cpp")
    g = torch.Generator().manual_seed(batch)
    x = (torch.rand(batch, 40, generator=g) > 0.5).float()
    noises = F.layer_noise(net.layers, 5)
    coefs = [F.GumbelCoefficients.apply(l.logits.detach(), n, 1.0, l.coeffs).requires_grad_()
             for l, n in zip(net.layers, noises)]
    ia, ib = [l.ia for l in net.layers], [l.ib for l in net.layers]
    scores = F.GumbelNetFunction.apply(x, ia, ib, 4, 4.0, *coefs)
    h = x.t().contiguous()
    for l, c in zip(net.layers, coefs):
        h = F.logic_layer(h, l.ia, l.ib, c, binary=True, backend="torch")
    ref = net.head(h)
    assert torch.equal(scores, ref)  # counts of 0/1 gates divided by tau: exact
    w = torch.randn(batch, 4, generator=g)
    got_g = torch.autograd.grad((scores * w).sum(), coefs)
    ref_g = torch.autograd.grad((ref * w).sum(), coefs)
    for a, b in zip(got_g, ref_g):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_logicnet_takes_the_packed_path_in_gumbel_training_only():
    net = LogicNet(40, 4, layers=2, width=32, group_size=8, tau=2.0, seed=1, backend="cpp")
    x = (torch.rand(8, 40, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    assert net(x, noise_seed=1).grad_fn.name() == "GumbelNetFunctionBackward"
    net.mode = net.layers[0].mode = net.layers[1].mode = "softmax"
    assert net(x).grad_fn.name() != "GumbelNetFunctionBackward"
    net.eval()
    assert net(x).grad_fn is None or net(x).grad_fn.name() != "GumbelNetFunctionBackward"


def _kernel_results(threads: int) -> list[torch.Tensor]:
    """Every threaded C++ kernel on sizes that split into many parallel tasks, with ``threads`` threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(5)
        in_dim, n, batch = 700, 3000, 200  # 3000 gates x 200 samples: dozens of tasks per kernel
        x = (torch.rand(in_dim, batch, generator=g) > 0.5).float()
        ia, ib = torch.randint(0, in_dim, (n,), generator=g), torch.randint(0, in_dim, (n,), generator=g)
        coef = torch.randn(n, 4, generator=g)
        grad = torch.randn(n, batch, generator=g)
        m = cpu_kernel.module()
        out = [m.forward(x, ia, ib, coef), *m.backward(x, ia, ib, coef, grad, True),
               *m.backward_bits(m.pack_bits(x), batch, ia, ib, coef, grad, True), m.gumbel_noise(n, 3, 4, True)]
        logits = torch.randn(n, 16, generator=g)
        out += [*m.softmax_coef(logits, F.coeff_matrix()), *m.gumbel_coef(logits, out[-1], 2.0, F.coeff_matrix())]
        net = LogicNet(in_dim, 10, layers=3, width=n, group_size=n // 10, tau=5.0, mode="gumbel", seed=1,
                       backend="cpp").train()
        xb = (torch.rand(batch, in_dim, generator=g) > 0.5).float()
        scores = net(xb, noise_seed=2)
        scores.square().sum().backward()
        return out + [scores.detach()] + [layer.logits.grad.clone() for layer in net.layers]
    finally:
        torch.set_num_threads(old)


def test_kernels_give_the_same_result_on_one_and_on_two_threads():
    """The kernels split work by output row (or input row for gradients), so every sum is taken in the
    same order on any number of threads: the results are bit-identical. The threaded results also
    match the plain PyTorch layer."""
    one, two = _kernel_results(1), _kernel_results(2)
    for a, b in zip(one, two):
        assert torch.equal(a, b)
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(700, 200, generator=g) > 0.5).float()
    ia, ib = torch.randint(0, 700, (3000,), generator=g), torch.randint(0, 700, (3000,), generator=g)
    coef = torch.randn(3000, 4, generator=g)
    grad = torch.randn(3000, 200, generator=g)
    torch.testing.assert_close(two[0], F.forward_torch(x, ia, ib, coef))
    ref_gx, ref_gc = F.backward_torch(x, ia, ib, coef, grad)
    for got_gx, got_gc in ((two[1], two[2]), (two[3], two[4])):
        torch.testing.assert_close(got_gx, ref_gx, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got_gc, ref_gc, rtol=1e-4, atol=1e-3)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs at least 2 CPU cores")
def test_kernels_run_on_torch_threads():
    """at::parallel_for in the extension runs on as many threads as torch.set_num_threads allows (it
    silently ran on one while the extension was built without OpenMP)."""
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cpu_kernel.module().parallel_threads(64) == 2
        torch.set_num_threads(1)
        assert cpu_kernel.module().parallel_threads(64) == 1
    finally:
        torch.set_num_threads(old)
