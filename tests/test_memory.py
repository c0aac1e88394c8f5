"""Gumbel mode stores its saved activations as bits: at least 8x below float32 storage.

Measured, not computed: ``torch.autograd.graph.saved_tensors_hooks`` sees every tensor autograd saves
for the backward pass during a training forward (LogicNet and the loss). The per-gate tensors it saves
(logits' softmax, coefficients, connection indices) do not grow with the batch; the activations do. So
the activation memory per sample is the growth of the saved bytes between two batch sizes, compared
with float32 storage of every layer's input, ``sum(in_dim) * 4`` bytes per sample.
"""

import pytest
import torch

from logicforge.train import cpu_kernel
from logicforge.train.model import LogicNet

IN_BITS, CLASSES, LAYERS, WIDTH, GROUP = 256, 4, 3, 512, 64
SMALL, LARGE = 64, 512  # batch sizes (multiples of 8: bit packing pads each row to whole bytes)


def saved_bytes(mode: str, backend: str, batch: int) -> int:
    """Bytes of all tensors autograd saves during one training forward and loss, distinct storages once."""
    net = LogicNet(IN_BITS, CLASSES, layers=LAYERS, width=WIDTH, group_size=GROUP, tau=8.0, mode=mode,
                   backend=backend)
    net.train()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, IN_BITS, generator=g) > 0.5).float()
    y = torch.randint(0, CLASSES, (batch,), generator=g)
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(net(x, noise_seed=1), y)
    loss.backward()  # the saved tensors are usable: the graph is complete
    return sum(storages.values())


def float32_bytes_per_sample() -> int:
    in_dims = [IN_BITS] + [WIDTH] * (LAYERS - 1)
    return sum(in_dims) * 4


def activation_bytes_per_sample(mode, backend):
    return (saved_bytes(mode, backend, LARGE) - saved_bytes(mode, backend, SMALL)) / (LARGE - SMALL)


@pytest.fixture(params=["torch", "cpp"])
def backend(request):
    if request.param == "cpp" and not cpu_kernel.available():
        pytest.skip("the C++ kernel cannot be built on this machine (no compiler or ninja)")
    return request.param


def test_gumbel_saved_activations_are_8x_below_float32(backend):
    per_sample = activation_bytes_per_sample("gumbel", backend)
    ratio = float32_bytes_per_sample() / per_sample
    print(f"gumbel/{backend}: {per_sample:.1f} saved bytes per sample vs {float32_bytes_per_sample()} "
          f"as float32: {ratio:.1f}x smaller")
    assert per_sample > 0
    assert ratio >= 8


def test_softmax_saves_float_activations(backend):
    """The relaxed mode needs real-valued activations: it saves at least their float32 size."""
    per_sample = activation_bytes_per_sample("softmax", backend)
    assert per_sample >= float32_bytes_per_sample()
