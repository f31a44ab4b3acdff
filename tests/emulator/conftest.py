import sys
from pathlib import Path

# tests/ holds access_emulator and support; tests/emulator holds emulator_flows.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest
from emulator_flows import OTHER_REDIRECT_URI, REDIRECT_URI, USER_EMAIL
from support.stack import start_emulator, start_origin


@pytest.fixture(scope="session")
def running_emulator():
    with start_emulator(redirect_uris=[REDIRECT_URI, OTHER_REDIRECT_URI], email=USER_EMAIL) as emulator:
        yield emulator


@pytest.fixture
def emulator(running_emulator):
    """The shared emulator, back to its startup state (config, key, stats) for each test."""
    running_emulator.reset()
    return running_emulator


@pytest.fixture(scope="session")
def origin(running_emulator):
    with start_origin(running_emulator.base_url, running_emulator.client_id, USER_EMAIL) as origin:
        yield origin
