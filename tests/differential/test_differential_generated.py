"""The invariant over generated requests, per origin: a seeded, count-bounded generator of
request variants (charsets, content encodings, member names differing in case or repeated,
resource URI spellings, HTTP methods, JSON-RPC id spellings, batches, SSE line ends), each sent
through the gateway by every identity. For each, the origin's own log must show nothing used
that the policy does not allow that identity, every list received must hold only allowed
entries, and an answer the gateway gives by itself must be a clear error (see
differential_stack.Outcome.violations).

Replay a run with DIFFERENTIAL_SEED=<seed> (printed on failure); DIFFERENTIAL_VARIANTS sets
the number of variants per origin (each is sent once per identity).
"""

import os
import random
from collections import Counter
from dataclasses import dataclass

import pytest
from differential_stack import IDENTITIES, ORIGIN_KINDS, Members, Probe, Raw, content_encoded, encode, mcp_headers, message

SEED = int(os.environ.get("DIFFERENTIAL_SEED", "24"))
VARIANTS = int(os.environ.get("DIFFERENTIAL_VARIANTS", "60"))

TARGETS = {
    "tool": ["search", "delete_all"],
    "prompt": ["summary", "payroll"],
    # Two fixed resources, then one read through each template.
    "resource": ["file:///reports/q3.pdf", "file:///finance/secret.pdf", "file:///reports/q4.pdf", "file:///finance/q4.pdf"],
    "template": ["file:///reports/{name}.pdf", "file:///finance/{name}.pdf"],
}
# The harmless name a body shows first, before the one that differs only in spelling.
DECOYS = {"name": "search", "uri": "file:///reports/q3.pdf"}
LIST_METHODS = ["tools/list", "resources/list", "resources/templates/list", "prompts/list"]
IDS = ["1", "-0", "1.0", "1e0", "1E+0", "-0.0", "12345678901234567890123", '"req-1"', "0"]
CHARSETS = [
    ("application/json", "utf-8"),
    ("application/json; charset=utf-8", "utf-8"),
    ('application/json; charset="utf-8"', "utf-8"),
    ("application/json; charset=UTF-8", "utf-8"),
    ("application/json; charset=utf-7", "utf-7"),
    ("application/json; charset=utf-16", "utf-16"),
    ("application/json; charset=latin1", "latin-1"),
    ("application/json; charset=iso-8859-1", "latin-1"),
    ("application/json", "bom"),
    (None, "utf-8"),
]
ENCODINGS = [None, None, None, "identity", "gzip", "deflate", "br"]
HTTP_METHODS = ["POST"] * 6 + ["PUT", "PATCH", "DELETE", "GET"]
FRAMES = [None, "lf", "cr", "crlf"]


def spell_uri(rng: random.Random, uri: str) -> tuple[str, str]:
    """Another spelling of `uri` that URL parsers (WHATWG, the url crate) resolve to it."""
    path = uri.removeprefix("file:///")
    other = "finance" if path.startswith("reports/") else "reports"
    spellings = {
        "as-is": uri,
        "dot-dot": f"file:///{other}/../{path}",
        "encoded-dot-dot": f"file:///{other}/%2e%2e/{path}",
        "mixed-case-dot-dot": f"file:///{other}/%2E%2e/{path}",
        "dot": f"file:///./{path}",
        "upper-scheme": f"FILE:///{path}",
        "localhost": f"file://localhost/{path}",
        "upper-localhost": f"file://LOCALHOST/{path}",
        "encoded-letter": "file:///" + path.replace("e", "%65", 1),
        "trailing-slash": f"{uri}/",
    }
    how = rng.choice(list(spellings))
    return how, spellings[how]


@dataclass
class Op:
    """One JSON-RPC request of a variant, and how its name-bearing member is spelt."""

    method: str
    params: Members
    label: str


def op(rng: random.Random) -> Op:
    kind = rng.choice(["tool", "resource", "subscribe", "prompt", "complete", "list", "list"])
    if kind == "tool":
        name = rng.choice(TARGETS["tool"])
        return Op("tools/call", Members([("name", name), ("arguments", {"q": "caf\u00e9"})]), f"call {name}")
    if kind in ("resource", "subscribe"):
        how, uri = spell_uri(rng, rng.choice(TARGETS["resource"]))
        method = "resources/read" if kind == "resource" else "resources/subscribe"
        return Op(method, Members([("uri", uri)]), f"{method} {how} {uri}")
    if kind == "prompt":
        name = rng.choice(TARGETS["prompt"])
        return Op("prompts/get", Members([("name", name), ("arguments", {"topic": "q3"})]), f"get {name}")
    if kind == "complete":
        if rng.random() < 0.5:
            name = rng.choice(TARGETS["prompt"])
            ref, argument = {"type": "ref/prompt", "name": name}, "topic"
        else:
            name = rng.choice(TARGETS["template"])
            ref, argument = {"type": "ref/resource", "uri": name}, "name"
        return Op("completion/complete", Members([("ref", ref), ("argument", {"name": argument, "value": "q"})]), f"complete {name}")
    method = rng.choice(LIST_METHODS)
    return Op(method, Members(), method)


def respell_members(rng: random.Random, chosen: Op) -> tuple[Members, list, str]:
    """Params and extra message members with a name repeated, or differing only in case or
    in Go's folding (`ſ` is s, `K` is k): the first spelling harmless, the last the target."""
    params, top = Members(chosen.params), []
    member = next((k for k, _ in params if k in DECOYS), None)
    how = rng.choice(["none", "none", "Name", "NAME", "exact", "long-s", "kelvin"])
    if how in ("Name", "NAME", "exact") and member:
        target = next(v for k, v in params if k == member)
        spelt = {"Name": member.capitalize(), "NAME": member.upper(), "exact": member}[how]
        params = Members([(member, DECOYS[member]), *[(k, v) for k, v in params if k != member], (spelt, target)])
    elif how == "long-s":
        top = [("param\u017f", Members(params))]
        params = Members([(k, DECOYS[k] if k in DECOYS else v) for k, v in params])
    elif how == "kelvin":
        params = Members([*params, ("kind", 1), ("\u212aind", 2)])
    else:
        how = "none"
    return params, top, how


SMUGGLED = "SMUGGLEDPAYLOAD"  # ASCII letters: the same bytes in UTF-7 as in UTF-8


def utf7_smuggling(params: Members) -> tuple[Members, bytes]:
    """The issue's charset payload: params showing the harmless name, and the UTF-7 bytes of a
    `","name":"target` that only a UTF-7 reader sees in the member after it (`+ACI-` is `"`,
    `+ACIALAAi-` is `","`)."""
    member = next((k for k, _ in params if k in DECOYS), None)
    if member is None:
        return params, b""
    target = next(v for k, v in params if k == member)
    shown = Members([(k, DECOYS[member] if k == member else v) for k, v in params])
    shown.append(("x", SMUGGLED))
    return shown, f"+ACIALAAi-{member}+ACI-:+ACI-{target}".encode()


def encoded_body(text: str, charset: str, payload: bytes) -> bytes:
    if charset == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if charset == "latin-1":
        # What Latin-1 cannot write stays a JSON escape (inside strings, where it can only be).
        return text.encode("latin-1", errors="backslashreplace")
    return text.encode(charset).replace(SMUGGLED.encode(), payload)


def variant(rng: random.Random, origin: str) -> tuple[str, str, dict[str, str], bytes, str | None]:
    """One request: (label, HTTP method, headers, body, SSE frame)."""
    modern = ORIGIN_KINDS[origin].modern
    ops = [op(rng) for _ in range(rng.choice([1, 1, 1, 1, 2, 3]))]
    content_type, charset = rng.choice(CHARSETS)
    messages, labels, payload = [], [], b""
    for n, chosen in enumerate(ops):
        params, top, how = respell_members(rng, chosen)
        if charset == "utf-7" and n == 0 and how == "none":
            params, payload = utf7_smuggling(params)
            how = "utf-7 smuggled" if payload else how
        id = Raw(rng.choice(IDS)) if n == 0 else Raw(str(n + 1))
        messages.append(message(chosen.method, params, id, modern=modern, top=top))
        labels.append(f"{chosen.label} members={how} id={id}")
    text = encode(messages if len(messages) > 1 else messages[0])
    encoding = rng.choice(ENCODINGS)
    headers = {**mcp_headers(messages, modern)}
    if content_type:
        headers["content-type"] = content_type
    if encoding:
        headers["content-encoding"] = encoding
    method = rng.choice(HTTP_METHODS)
    label = f"[{' | '.join(labels)}] content-type={content_type!r} charset={charset} encoding={encoding}"
    return label, method, headers, content_encoded(encoded_body(text, charset, payload), encoding), rng.choice(FRAMES)


@pytest.mark.parametrize("origin", list(ORIGIN_KINDS))
def test_the_origin_uses_and_lists_only_what_the_policy_allows(differential, origin):
    rng = random.Random(f"{SEED}-{origin}")
    violations: dict[str, list[str]] = {}
    statuses = Counter()
    for n in range(VARIANTS):
        label, method, headers, body, frame = variant(rng, origin)
        for identity in IDENTITIES:
            probe = Probe(origin, identity, f"#{n} {label}", method=method, headers=headers, body=body, frame=frame)
            outcome = differential.send(probe)
            statuses[(outcome.status, outcome.reached_origin)] += 1
            for why in outcome.violations():
                violations.setdefault(why, []).append(outcome.describe())
    summary = ", ".join(f"{status}{' via origin' if reached else ' from the gateway'}: {count}" for (status, reached), count in sorted(statuses.items()))
    print(f"{origin}: {VARIANTS * len(IDENTITIES)} requests ({summary})")
    report = [f"{len(examples)}x {why}; e.g.\n    {examples[0]}" for why, examples in sorted(violations.items(), key=lambda v: -len(v[1]))]
    assert not violations, (
        f"{sum(map(len, violations.values()))} violations of the invariant in front of {origin} "
        f"(replay: DIFFERENTIAL_SEED={SEED} DIFFERENTIAL_VARIANTS={VARIANTS}):\n" + "\n".join(report[:20])
    )
