"""Run a command where test host names are real HTTPS hosts on loopback, without touching the machine.

    python tests/support/netns.py COMMAND...
    subprocess.run(namespace_argv(["python", "-m", "pytest", ...]))   # the same from Python

Inside a new network namespace (nothing but its own loopback, brought up here, so no route out)
and a new mount namespace (private propagation, unshare's default, so no mount leaves it), two
files are bind-mounted over the system's:

- `/etc/hosts`: the machine's, plus TEST_HOSTS mapped to 127.0.0.1;
- `/etc/ssl/certs/ca-certificates.crt`: the system CAs plus a CA made for this run
  (support/certificates.py), which signed one server certificate for TEST_HOSTS.

workerd (under wrangler dev) resolves names and trusts CAs through those files, so a Worker can
fetch `https://client.example.test:8443/...` from a test server. Node gets the CA through
NODE_EXTRA_CA_CERTS and Python's httpx through SSL_CERT_FILE (it would use certifi's bundle
otherwise). The command also gets TEST_HOST_CERT and TEST_HOST_KEY, the server certificate chain
and key for the test server. The files live in a temporary folder removed afterwards; the mounts
and the network go with the namespace, so nothing outside changes and runs can go in parallel.

Needs what `unshare --net --mount` needs (root) and the system CA bundle; `unavailable()` says
why not.
"""

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.certificates import make_test_ca  # noqa: E402

TEST_HOSTS = ("client.example.test", "other.example.test")
HOSTS = Path("/etc/hosts")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def namespace_argv(command: list[str]) -> list[str]:
    """`command` run in new namespaces: this file under unshare, told the namespaces it left."""
    this = str(Path(__file__).resolve())
    return ["unshare", "--net", "--mount", "--", sys.executable, this, "--inside", _namespaces(), *command]


def unavailable() -> str | None:
    """Why commands cannot run in the namespace here, or None when they can."""
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    if not CA_BUNDLE.is_file():
        return f"there is no system CA bundle at {CA_BUNDLE}"
    probe = subprocess.run(["unshare", "--net", "--mount", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`unshare --net --mount` is not permitted (it needs root): {probe.stderr.strip()}"
    return None


def _loopback_up() -> None:
    """`ip link set lo up` without needing iproute2: the interface flags ioctls of netdevice(7)."""
    get_flags, set_flags, up = 0x8913, 0x8914, 0x1  # SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP
    ifreq = "16sH22x"  # struct ifreq: the name, then ifr_flags in a 24-byte union
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        flags = struct.unpack(ifreq, fcntl.ioctl(probe, get_flags, struct.pack(ifreq, b"lo", 0)))[1]
        fcntl.ioctl(probe, set_flags, struct.pack(ifreq, b"lo", flags | up))


def _namespaces() -> str:
    return " ".join(os.readlink(f"/proc/self/ns/{ns}") for ns in ("net", "mnt"))


def _inside(outside: str, command: list[str]) -> int:
    # Never mount over the machine's files: both namespaces must be new ones.
    if any(ns in outside.split() for ns in _namespaces().split()):
        sys.exit("netns.py: not in new network and mount namespaces; run it without --inside")
    folder = Path(tempfile.mkdtemp(prefix="test-hosts-"))
    try:
        ca = make_test_ca(folder, list(TEST_HOSTS))
        hosts = folder / "hosts"
        hosts.write_text(HOSTS.read_text() + "".join(f"\n127.0.0.1 {host}" for host in TEST_HOSTS) + "\n")
        bundle = folder / "ca-certificates.crt"
        bundle.write_text(CA_BUNDLE.read_text() + "\n" + ca.ca_pem.read_text())
        for source, target in ((hosts, HOSTS), (bundle, CA_BUNDLE)):
            subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        _loopback_up()
        env = {
            **os.environ,
            "TEST_HOST_CERT": str(ca.cert_pem),
            "TEST_HOST_KEY": str(ca.key_pem),
            "NODE_EXTRA_CA_CERTS": str(ca.ca_pem),
            "SSL_CERT_FILE": str(CA_BUNDLE),
        }
        return subprocess.run(command, env=env).returncode
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"] and len(sys.argv) > 3:
        sys.exit(_inside(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) < 2:
        sys.exit("usage: python netns.py COMMAND...")
    os.execvp("unshare", namespace_argv(sys.argv[1:]))
