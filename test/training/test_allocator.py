"""glibc malloc tuning: applied on glibc, skipped when opted out, never a failure elsewhere."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest

from alphanet import allocator

PROBE = """
import resource, torch
from alphanet.allocator import tune_malloc
torch.set_num_threads(1)
tuned = tune_malloc() if TUNE else False
net = torch.nn.Sequential(  # a few MB of activations per step, freed and reallocated every step
    torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.SiLU(),
    torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.BatchNorm2d(64), torch.nn.SiLU(),
)
x = torch.randn(64, 1, 28, 28)
for _ in range(3):
    net(x).sum().backward()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    net(x).sum().backward()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def run_probe(tune: bool) -> tuple[bool, int]:
    """(tuned?, page faults of 20 steps) in a fresh interpreter."""
    code = PROBE.replace("TUNE", str(tune))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    tuned, faults = out.split()
    return tuned == "True", int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_settings_are_accepted_by_glibc():
    assert allocator.tune_malloc() is True


def test_opting_out_changes_nothing(monkeypatch):
    monkeypatch.setenv(allocator.OPT_OUT, "1")
    calls = []
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: calls.append(a))
    assert allocator.tune_malloc() is False and calls == []


def test_a_libc_without_mallopt_is_left_alone(monkeypatch):
    monkeypatch.delenv(allocator.OPT_OUT, raising=False)

    class NoMallopt:
        def __init__(self, *args, **kwargs):
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert allocator.tune_malloc() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tuned_steps_reuse_memory_instead_of_faulting_it_in_again():
    # What makes the default slow is the kernel handing the same megabytes back at every step
    # (page faults); the time saved is measured in docs/fashion-mnist-recipe.md.
    tuned, tuned_faults = run_probe(True)
    untuned, default_faults = run_probe(False)
    assert tuned and not untuned
    assert tuned_faults * 10 < default_faults, (tuned_faults, default_faults)
