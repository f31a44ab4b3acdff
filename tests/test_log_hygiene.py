"""The log scan over the whole run: nothing any Worker printed during this test session (its
own JSON request lines and everything wrangler/workerd said) contains a secret, a token, a
code or a tool argument. Collected last (pytest orders `tests/` alphabetically), so it sees every Worker the
session started, running or stopped."""

import re

import pytest
from support.worker import ARGUMENT_MARKER, STARTED

# A JWT (Access tokens, id_tokens), and any long base64url run: sealed codes, states, consent
# tickets and sealed tokens are all longer than 80 characters.
JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+")
SEALED = re.compile(r"[A-Za-z0-9_-]{80,}")


def test_no_worker_log_contains_a_secret_token_or_code():
    if not STARTED:
        pytest.skip("no Worker ran in this session (a subset was selected)")
    for worker in STARTED:
        log = worker.log()
        # An empty value (a Worker started with a setting missing on purpose) has nothing to leak.
        names = ("SEALING_KEYS", "ACCESS_CLIENT_SECRET", "ORIGIN_ACCESS_CLIENT_SECRET")
        secrets = [worker.settings[name] for name in names if worker.settings.get(name)]
        for secret in secrets:
            assert secret not in log, f"a configured secret appears in the log of {worker.url}"
        assert not JWT.search(log), f"a JWT appears in the log of {worker.url}: {JWT.search(log).group()[:20]}…"
        assert ARGUMENT_MARKER not in log, f"a tool argument appears in the log of {worker.url}"
        found = SEALED.search(log)
        assert not found, f"a sealed value or opaque token appears in the log of {worker.url}: {found.group()[:20]}…"
        for line in worker.request_log():
            assert {"route", "status", "method"} <= line.keys(), line
