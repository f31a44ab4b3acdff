"""The Worker's JWKS cache against the Access emulator's keys (gateway: JWKS_MIN_REFETCH_SECONDS=2).

The cache is per isolate and `wrangler dev` runs one, so the emulator's JWKS fetch count is the
Worker's. The Worker's clock ticks in whole seconds, so "at most one fetch per interval" allows
one more fetch than elapsed/interval suggests when a second boundary falls just right.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from edge_stack import JWKS_MIN_REFETCH_SECONDS

# Long enough for the refetch interval to pass (plus the clock's granularity) and a request.
REFETCH_WAIT = JWKS_MIN_REFETCH_SECONDS + 2


def status(gateway, token: str) -> int:
    return gateway.call("GET", "/echo", token).status_code


def concurrently(edge, tokens: list[str], at_once: int = 5) -> list[int]:
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        return list(pool.map(lambda token: status(edge, token), tokens))


def force_refetch(gateway) -> None:
    """Sends unknown-kid tokens until the Worker fetches the JWKS once more."""
    fetches = gateway.jwks_fetches()
    deadline = time.monotonic() + REFETCH_WAIT
    while gateway.jwks_fetches() == fetches:
        assert time.monotonic() < deadline, "the Worker never refetched the JWKS for an unknown kid"
        assert status(gateway, gateway.unknown_kid_token()) == 401
        time.sleep(0.2)


def test_rotation_new_key_after_one_refetch_old_key_until_retired(gateway):
    warm = gateway.mint()
    spare = gateway.mint()  # signed by the old key, first presented after the rotation
    assert status(gateway, warm) == 200

    gateway.emulator.control("rotate-key")
    new = gateway.mint()
    fetches = gateway.jwks_fetches()
    response = gateway.wait_accepted(new, "/echo", timeout=REFETCH_WAIT)
    assert response.status_code == 200, "a token signed by the new key is accepted once the interval allows a refetch"
    assert gateway.jwks_fetches() - fetches == 1, "exactly one refetch let the new key in"
    # Access keeps the old key published for a while: its tokens still validate, cached or not.
    assert status(gateway, warm) == 200
    assert status(gateway, spare) == 200

    gateway.emulator.control("retire-old-key")
    assert status(gateway, warm) == 200, "until the next refresh, the cached key set still has the old key"
    force_refetch(gateway)
    assert status(gateway, warm) == 401, "a cached verdict must not outlive its key"
    assert status(gateway, spare) == 401
    assert status(gateway, new) == 200


def test_jwks_outage_keeps_the_cached_keys_serving(gateway):
    assert status(gateway, gateway.mint()) == 200  # the key set is cached
    fresh = gateway.mint()  # never seen: needs a real signature check during the outage
    gateway.emulator.configure(jwks_down=True)
    force_refetch(gateway)  # the fetch was attempted and answered 503
    assert status(gateway, fresh) == 200
    assert '"jwks_fetch_failed"' in gateway.worker.log()


def test_kid_spray_does_not_turn_the_worker_into_a_jwks_amplifier(gateway):
    assert status(gateway, gateway.mint()) == 200
    sprayed = [gateway.unknown_kid_token() for _ in range(50)]
    fetches = gateway.jwks_fetches()
    started = time.monotonic()
    statuses = concurrently(gateway, sprayed, at_once=10)
    elapsed = time.monotonic() - started
    refetches = gateway.jwks_fetches() - fetches
    assert statuses == [401] * 50
    assert elapsed < 4, f"the spray took {elapsed:.1f} s: too slow to say anything"
    assert refetches <= int(1 + (elapsed + 1) / JWKS_MIN_REFETCH_SECONDS), (refetches, elapsed)
    assert status(gateway, gateway.mint()) == 200, "good tokens still pass after the spray"


# Requests that arrive while the isolate's JWKS fetch is in flight: JwksCache::plan (src/access/jwks.rs)
# records the attempt before the fetch answers, so they neither fetch nor wait for the one under way.
def test_concurrent_first_requests_of_an_isolate_wait_for_the_jwks(gateway, start_gateway):
    """A fresh isolate (every deploy, every new colo) gets a burst: an MCP client opens its SSE
    stream and posts at once. None of these valid tokens may fail."""
    cold = start_gateway()
    gateway.emulator.configure(jwks_delay_ms=500)  # widens the window; without it ~1 ms is enough
    assert concurrently(cold, [cold.mint() for _ in range(5)]) == [200] * 5


def test_concurrent_requests_for_a_new_key_wait_for_the_refetch(gateway):
    """Right after a rotation, a burst of tokens signed by the new key: one refetch, all wait for it."""
    assert status(gateway, gateway.mint()) == 200
    time.sleep(JWKS_MIN_REFETCH_SECONDS + 1)  # a refetch is allowed again
    gateway.emulator.control("rotate-key")
    gateway.emulator.configure(jwks_delay_ms=500)
    assert concurrently(gateway, [gateway.mint() for _ in range(5)]) == [200] * 5


def test_a_client_leaving_mid_fetch_does_not_stall_the_isolate(gateway, start_gateway):
    """The first request of a fresh isolate starts the JWKS fetch, and its client hangs up before
    Access answers. The fetch runs under waitUntil, so it still completes and stores the keys: the
    next request is answered with them, instead of waiting out a fetch no one finishes and then
    finding no keys at all. (`wrangler dev` lets a request whose client left run on, so this
    guards the waitUntil wiring rather than reproducing the cancellation; the deadline for a
    fetch that never ends is src/access/jwks.rs's a_fetch_that_never_ends_is_dead_after_the_deadline.)"""
    cold = start_gateway()
    gateway.emulator.configure(jwks_delay_ms=1500)
    fetches = gateway.jwks_fetches()
    with pytest.raises(httpx.ReadTimeout):
        cold.http.get(cold.worker.url + "/echo", headers={"authorization": f"Bearer {cold.mint()}"}, timeout=0.5)
    assert status(cold, cold.mint()) == 200
    assert gateway.jwks_fetches() - fetches == 1, "the departed client's fetch served the next request"


def test_a_cached_token_is_trusted_only_under_the_key_that_verified_it(gateway, start_gateway):
    """Access re-keys a kid in place: the cached verdict for a token the old key signed must go
    with the old key, although the kid is still in the set."""
    fresh = start_gateway(JWKS_MIN_REFETCH_SECONDS=str(JWKS_MIN_REFETCH_SECONDS))
    warm = fresh.mint()
    assert status(fresh, warm) == 200  # verified, and remembered
    gateway.emulator.control("rekey")
    force_refetch(fresh)
    assert status(fresh, warm) == 401, "a cached verdict must not outlive its key, even under the same kid"
    assert status(fresh, fresh.mint()) == 200, "tokens of the new key pass"


def test_a_stale_key_set_is_refreshed_while_cached_tokens_are_served(gateway, start_gateway):
    """Only cached tokens arrive (each served by the synchronous path): the set is still refreshed
    once it is older than JWKS_TTL_SECONDS, and no request waits for it or fails meanwhile."""
    fresh = start_gateway(JWKS_TTL_SECONDS="2", JWKS_MIN_REFETCH_SECONDS="1")
    token = fresh.mint()
    assert status(fresh, token) == 200
    fetches = gateway.jwks_fetches()
    deadline = time.monotonic() + 30  # a safety bound, not a measurement
    while gateway.jwks_fetches() == fetches:
        assert time.monotonic() < deadline, "the stale key set was never refreshed"
        assert status(fresh, token) == 200
        time.sleep(0.3)
    assert status(fresh, token) == 200
