"""pytest plugin for CI (``-p skip_guard`` with ``.ci`` on PYTHONPATH): a skip CI did not allow fails the run.

CI installs everything its tests need, so a test that skips there means something did not install or a test
lost what it needs: that must turn CI red, not pass as green. The allowed skip reasons are regular expressions,
one per line, in the environment variable ``VID2VID_CI_ALLOWED_SKIPS`` (matched with ``re.search``).
"""

from __future__ import annotations

import os
import re

import pytest

_unexpected: list[str] = []


def _allowed() -> list[re.Pattern[str]]:
    lines = os.environ.get("VID2VID_CI_ALLOWED_SKIPS", "").splitlines()
    return [re.compile(line.strip()) for line in lines if line.strip()]


def _check(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if not any(p.search(reason) for p in _allowed()):
        _unexpected.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _check(report)  # a whole module skipped (pytest.importorskip at module level)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _check(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexpected and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _unexpected:
        terminalreporter.section("skips CI does not allow (install what they need, or fix the test)", red=True)
        for line in _unexpected:
            terminalreporter.write_line(line)
