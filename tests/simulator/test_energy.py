"""The one energy path: a request's joules from its tokens, the cost model, the power cap and its batch."""

from __future__ import annotations

import numpy as np
import pytest
from hybridsim.simulator.energy import NO_CAP, PowerCap, batch_share, idle_energy, request_energy
from sim_fakes import FAST

M, N = np.array([5, 40, 300]), np.array([200, 3, 64])


def test_served_alone_uncapped_is_the_profile() -> None:
    joules = request_energy(FAST, M, N)
    assert np.array_equal(joules.cpu_j, FAST.cpu_energy_j(M, N))
    assert np.array_equal(joules.gpu_j, FAST.gpu_energy_j(M, N))
    assert np.allclose(joules.energy_j, FAST.energy_j(M, N), rtol=1e-15)


def test_a_power_cap_stretches_cpu_energy_and_scales_gpu_power() -> None:
    capped = request_energy(FAST, M, N, PowerCap(runtime_factor=1.2, power_factor=0.7))
    assert np.allclose(capped.cpu_j, FAST.cpu_energy_j(M, N) * 1.2)
    assert np.allclose(capped.gpu_j, FAST.gpu_energy_j(M, N) * 1.2 * 0.7)
    assert np.allclose(capped.energy_j, capped.cpu_j + capped.gpu_j)


def test_a_batch_share_scales_both_components() -> None:
    share = np.array([0.5, 1.0, 0.25])
    alone, batched = request_energy(FAST, M, N, NO_CAP), request_energy(FAST, M, N, NO_CAP, share)
    assert np.allclose(batched.cpu_j, alone.cpu_j * share)
    assert np.allclose(batched.gpu_j, alone.gpu_j * share)
    assert np.allclose(batched.energy_j, alone.energy_j * share)


def test_batch_shares_add_up_to_the_padded_batch() -> None:
    alone = [3.0, 10.0, 7.0]
    share = batch_share(alone, energy_growth=0.2)
    assert sum(e * share for e in alone) == pytest.approx(10.0 * (1 + 0.2 * 2))
    assert batch_share([4.0], 0.5) == 1.0
    assert batch_share([0.0, 0.0], 0.5) == 1.0


def test_idle_energy_is_idle_power_times_unbusy_time() -> None:
    power, busy = np.array([2.0, 50.0, 10.0]), np.array([10.0, 100.0, 150.0])
    assert np.array_equal(idle_energy(power, busy, 120.0), np.array([220.0, 1000.0, 0.0]))
