"""pytest plugin (entry point `pytest11: memprobe`): skip tests the host forbids.

    @pytest.mark.memprobe_requires("wx_flip")                        # all of these
    @pytest.mark.memprobe_requires(any_of=["wx_flip", "dual_mapping"])  # one of these

Names are the report's strategies and summary capabilities. A marked test runs where
each requirement works (or, for nx/heap_nx/stack_nx, is enforced); elsewhere it is
skipped with what the report says: the mechanisms it attributes the refusal to, or that
the answer is unknown. The host is probed once per session, only when a marked test is
collected, so a project that never uses the marker pays for nothing but this import.
"""

from __future__ import annotations

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from probe.pytest_plugin.host import Host

MARKER = "memprobe_requires"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memprobe", "skip tests the host's W^X policies forbid")
    group.addoption("--memprobe-report", metavar="PATH",
                    help="use this saved memprobe report instead of probing the host")
    group.addoption("--memprobe-save", metavar="PATH",
                    help="write the report used for this session to PATH (.json: JSON, else YAML)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "%s(*names, any_of=[...]): run only where memprobe finds each named strategy or "
        "capability working (any_of: at least one of them); skip elsewhere with the reason" % MARKER)
    config.pluginmanager.register(SessionHost(config), "memprobe-session")


@pytest.fixture(scope="session")
def memprobe_report(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The memprobe report of this session (probed once, or --memprobe-report)."""
    plugin = pytestconfig.pluginmanager.get_plugin("memprobe-session")
    assert isinstance(plugin, SessionHost), "registered by pytest_configure"
    return plugin.host().report


class SessionHost:
    """Probes (or loads) the host at most once per session and answers markers from it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._host: Host | None = None

    def host(self) -> Host:
        if self._host is None:
            from probe.pytest_plugin.host import Host

            self._host = Host.obtain(self.config.getoption("memprobe_report"),
                                     self.config.getoption("memprobe_save"))
        return self._host

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        wanted = [(item, requirements(item)) for item in items]
        wanted = [(item, req) for item, req in wanted if req]
        if not wanted and not (self.config.getoption("memprobe_report")
                               or self.config.getoption("memprobe_save")):
            return  # nobody asked: do not probe
        from probe.pytest_plugin.host import check_names

        for item, req in wanted:
            check_names(item.nodeid, req)
        host = self.host()
        for item, req in wanted:
            reason = host.skip_reason(req)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))

    def pytest_report_collectionfinish(self, config: pytest.Config, items: list[pytest.Item]) -> str | None:
        if self._host is not None:
            return self._host.header_line()
        return None


def requirements(item: pytest.Item) -> list[tuple[str, list[str]]]:
    """[(kind, names)] from the item's markers: ("all", names) or ("any", names)."""
    out = []
    for mark in item.iter_markers(MARKER):
        extra = sorted(set(mark.kwargs) - {"any_of"})
        if extra:
            raise pytest.UsageError("%s: @pytest.mark.%s takes names and any_of=[...], not %s"
                                    % (item.nodeid, MARKER, ", ".join(extra)))
        names = list(mark.args)
        if names:
            out.append(("all", _names(item, names, "names")))
        if "any_of" in mark.kwargs:
            any_of = mark.kwargs["any_of"]
            if isinstance(any_of, str) or not isinstance(any_of, (list, tuple)) or not any_of:
                raise pytest.UsageError("%s: %s(any_of=...) takes a non-empty list of names"
                                        % (item.nodeid, MARKER))
            out.append(("any", _names(item, list(any_of), "any_of")))
        if not names and "any_of" not in mark.kwargs:
            raise pytest.UsageError("%s: @pytest.mark.%s needs at least one strategy or capability"
                                    % (item.nodeid, MARKER))
    return out


def _names(item, names, where):
    for name in names:
        if not isinstance(name, str):
            raise pytest.UsageError("%s: %s %s: expected strategy or capability names, got %r"
                                    % (item.nodeid, MARKER, where, name))
    return names
