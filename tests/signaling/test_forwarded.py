"""X-Forwarded-For / X-Forwarded-Proto are believed only from trusted proxies
(signaling/forwarded.py), and a bad trusted_proxies entry stops the start."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from server.config import Config, ConfigError
from signaling.forwarded import (
    TrustedProxies,
    client_address,
    environ_client_address,
    forwarded_https,
    parse_address,
)

PROXIES = TrustedProxies(("10.0.0.0/8", "192.0.2.1", "2001:db8::/32"))


def test_without_a_trusted_peer_the_peer_is_the_client() -> None:
    assert client_address("198.51.100.7", ["203.0.113.5"], PROXIES) == "198.51.100.7"
    assert client_address("198.51.100.7", [], TrustedProxies()) == "198.51.100.7"
    # Nobody is trusted by default, loopback included.
    assert client_address("127.0.0.1", ["203.0.113.5"], TrustedProxies()) == "127.0.0.1"


def test_behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() -> None:
    assert client_address("192.0.2.1", ["203.0.113.5"], PROXIES) == "203.0.113.5"
    # What the client wrote itself (left of the address the first proxy saw) is not believed.
    assert client_address("192.0.2.1", ["6.6.6.6, 203.0.113.5"], PROXIES) == "203.0.113.5"
    # Two proxies, the header repeated by each: walked right to left across both.
    assert client_address("10.1.2.3", ["6.6.6.6, 203.0.113.5", "192.0.2.1"],
                          PROXIES) == "203.0.113.5"
    assert client_address("2001:db8::9", ["[2001:db8::1]:443", "203.0.113.5:5123"],
                          PROXIES) == "203.0.113.5"


def test_a_chain_of_trusted_proxies_or_garbage_stops_at_the_last_known_hop() -> None:
    assert client_address("192.0.2.1", ["10.0.0.5, 10.0.0.6"], PROXIES) == "10.0.0.5"
    assert client_address("192.0.2.1", [], PROXIES) == "192.0.2.1"
    assert client_address("192.0.2.1", ["unknown, 10.0.0.6"], PROXIES) == "10.0.0.6"
    assert client_address("192.0.2.1", ["<script>"], PROXIES) == "192.0.2.1"


def test_addresses_are_read_as_proxies_write_them() -> None:
    assert str(parse_address("::ffff:192.0.2.1")) == "192.0.2.1"
    assert str(parse_address("[2001:db8::1]:8443")) == "2001:db8::1"
    assert str(parse_address(" 203.0.113.5:80 ")) == "203.0.113.5"
    assert parse_address("example.org") is None
    assert parse_address("") is None
    assert PROXIES.trusts(parse_address("::ffff:10.9.9.9"))


def test_the_scheme_is_believed_from_a_trusted_proxy_only() -> None:
    assert forwarded_https("192.0.2.1", ["https"], PROXIES)
    assert forwarded_https("192.0.2.1", ["HTTP, https"], PROXIES)
    assert not forwarded_https("192.0.2.1", ["https, http"], PROXIES)
    assert not forwarded_https("192.0.2.1", [], PROXIES)
    assert not forwarded_https("198.51.100.7", ["https"], PROXIES)


def test_a_sockets_peer_comes_from_the_aiohttp_request_not_remote_addr() -> None:
    # engineio's aiohttp driver writes REMOTE_ADDR = 127.0.0.1 for every socket.
    loopback = TrustedProxies(("127.0.0.1",))
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6",
               "aiohttp.request": SimpleNamespace(remote="198.51.100.7")}
    assert environ_client_address(environ, loopback) == "198.51.100.7"
    environ["aiohttp.request"] = SimpleNamespace(remote="127.0.0.1")
    assert environ_client_address(environ, loopback) == "6.6.6.6"
    assert environ_client_address({"REMOTE_ADDR": "203.0.113.5"}, loopback) == "203.0.113.5"


def test_a_bad_trusted_proxy_stops_the_start() -> None:
    with pytest.raises(ConfigError, match=r"trusted_proxies: 'proxy\.example'"):
        Config(trusted_proxies=("10.0.0.0/8", "proxy.example"))
    config = Config(trusted_proxies=("10.0.0.0/8", "::1"))
    assert config.proxies.trusts(parse_address("10.2.3.4"))
    assert config.proxies is config.proxies  # parsed once
