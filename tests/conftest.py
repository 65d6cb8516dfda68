"""Shared fixtures: small ReLU networks in float64, a fresh data/model cache, a browser."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch import nn


class TinyCNN(nn.Module):
    """A small piecewise-linear CNN on 1x8x8 inputs, C = 5 (conv, max-pool, BatchNorm)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 16),
            nn.ReLU(),
            nn.Linear(16, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own MANIFOLDLIB_DATA: nothing leaks into the user's cache."""
    monkeypatch.setenv("MANIFOLDLIB_DATA", str(tmp_path / "cache"))


@pytest.fixture
def mlp():
    from manifoldlib import MLP

    torch.manual_seed(0)
    return MLP(6, hidden=(16, 16), num_classes=4, activation="relu").double().eval()


@pytest.fixture
def cnn():
    torch.manual_seed(1)
    model = TinyCNN().double()
    # Non-trivial BatchNorm statistics, so that eval mode differs from train mode.
    model.body[1].running_mean.uniform_(-0.5, 0.5)
    model.body[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture
def x_mlp():
    return torch.randn(7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))


@pytest.fixture
def x_cnn():
    return torch.randn(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright (skipped, with the reason, when either is missing).

    Shared by tests/test_browser.py and tests/test_live_page.py; the pages each test opens route
    requests themselves (network to other hosts off).
    """
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=exe,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ci_required: must run in CI (CI=true): a skip there is a failure"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a skipped browser or ``ci_required`` test is a failure.

    A reader's run skips with the reason (no Chromium, no ../shared); CI must not, or a broken
    install would hide the tests it is there to run.
    """
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped:
        return
    if (
        item.get_closest_marker("browser") is None
        and item.get_closest_marker("ci_required") is None
    ):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"CI=true, so this test must run, but it was skipped: {reason}"
