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
