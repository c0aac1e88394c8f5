import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# Hypothesis budgets (docs/verification.md): "ci" for every test run, "long" for `make fuzz`.
try:
    import os

    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    settings.register_profile("long", max_examples=2000, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    settings.load_profile(os.environ.get("LOGICFORGE_FUZZ_PROFILE", "ci"))
except ImportError:  # hypothesis is a dev extra; the fuzz tests skip without it
    pass


@pytest.fixture(scope="module")
def small_net():
    """A small random netlist (4 features of width 6, layers 24/16, 4 classes of 3) for the board tests."""
    from logicforge.netlist.generate import random_netlist

    return random_netlist(np.random.default_rng(7), features=4, feature_width=6, thresholds_per_feature=3,
                          layer_widths=(24, 16), classes=4, group_size=3)


@pytest.fixture
def small_net_file(tmp_path, small_net):
    path = tmp_path / "small.json"
    small_net.save(path)
    return path


@pytest.fixture(scope="session")
def make_cfg():
    """``make_cfg(base, **overrides)``: the training config resolved from the plain dict ``base`` with
    its top-level keys ``overrides`` replaced (``base`` itself is left unchanged), named ``"t"``."""
    import copy

    from logicforge.train import config

    def make(base: dict, **overrides) -> dict:
        return config.resolve({**copy.deepcopy(base), **overrides}, "test") | {"name": "t"}

    return make
