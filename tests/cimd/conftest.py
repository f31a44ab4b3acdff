"""Client ID Metadata Documents against real HTTPS hosts: the tests run in namespaces of their own.

A CIMD client id is an https URL the Worker fetches, and the Worker refuses loopback and IP
literals, so the documents must come from real-looking names over TLS the runtime trusts.
support/netns.py gives exactly that without touching the machine: in a new network and mount
namespace, TEST_HOSTS resolve to 127.0.0.1 and a CA made for the run is trusted, and the
document server (document_server.py) answers on 127.0.0.1:8443 there.

Outside the namespace (a plain `pytest tests`, or `pytest tests/cimd -k ...`), the tests
collected here are replaced by one item that runs pytest again for exactly those tests inside
a namespace, plus the log scan of tests/test_log_hygiene.py over the Workers that run started.
It passes or fails with that run, whose output it shows (on failure, or with `-rP`). Where the
namespace cannot be made (not root), that item is skipped and says why.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from document_server import DocumentServer
from support.netns import namespace_argv, unavailable

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
INSIDE = "TEST_HOST_CERT" in os.environ  # set by support/netns.py
LOG_SCAN = TESTS / "test_log_hygiene.py"
RUN_TIMEOUT = 1800  # a safety net only

# The flow helpers of the conformance suite (authorize, exchange, error assertions).
sys.path.insert(0, str(TESTS / "conformance"))


class NamespaceRun(pytest.Item):
    """Runs `targets` (pytest node ids) in a new namespace; fails with that run's output."""

    def __init__(self, *, targets: list[str], **kwargs):
        super().__init__(**kwargs)
        self.targets = targets

    def runtest(self):
        reason = unavailable()
        if reason:
            pytest.skip(f"the CIMD tests need their own network namespace: {reason}")
        options = ["-p", "no:cacheprovider", "-q", "-rfEs", f"--maxfail={self.config.option.maxfail or 0}"]
        argv = namespace_argv([sys.executable, "-m", "pytest", *options, *self.targets, str(LOG_SCAN)])
        done = subprocess.run(argv, cwd=self.config.invocation_params.dir, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise NamespaceRunFailed(f"pytest in the namespace exited {done.returncode}:\n{output}")
        self.add_report_section("call", "namespace run", output)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NamespaceRunFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{len(self.targets)} tests of tests/cimd in a network namespace"


class NamespaceRunFailed(Exception):
    pass


@pytest.hookimpl(trylast=True)  # after -k and -m deselected what they do not want
def pytest_collection_modifyitems(session, config, items):
    if INSIDE:
        return
    mine = [item for item in items if HERE in item.path.parents]
    if not mine:
        return
    targets = [f"{item.path}::{item.nodeid.split('::', 1)[1]}" for item in mine]
    run = NamespaceRun.from_parent(mine[0].getparent(pytest.Dir), name="namespace", targets=targets)
    at = items.index(mine[0])
    items[:] = [item for item in items if item not in mine]
    items.insert(at, run)


@pytest.fixture(scope="session")
def docs():
    server = DocumentServer.start()
    yield server
    server.stop()
