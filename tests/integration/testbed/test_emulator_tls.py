"""HTTPS in both emulators, with certificates the fixture makes with openssl: a client that
trusts the test CA gets through; one that does not, or that reaches a certificate for another
name, an expired one or a self-signed one, fails the handshake as against a real server. The
handshake runs in the connection's own thread, so a client that never speaks TLS stalls no one.
"""

import json
import socket
import ssl
import time
import urllib.error
import urllib.request

import consul as consul_client
import pytest
import requests


def https_get(url, cafile, timeout=10):
    context = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        return response.status, json.loads(response.read())


def verify_failure(url, cafile):
    with pytest.raises(urllib.error.URLError) as err:
        https_get(url, cafile)
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError), err.value.reason
    return err.value.reason.verify_message


def test_consul_over_https_with_the_test_ca(consul_emulator, tls_certs):
    handle = consul_emulator(tls=tls_certs.good, ca=tls_certs.ca)
    assert handle.url.startswith("https://127.0.0.1:")
    status, services = https_get(handle.url + "/v1/catalog/services", tls_certs.ca)
    assert status == 200 and "consul" in services
    client = handle.client()  # python-consul2, verify= the CA
    client.kv.put("edgex/v3/core-data/Writable/LogLevel", "INFO")
    assert client.kv.get("edgex/v3/core-data/Writable/LogLevel")[1]["Value"] == b"INFO"
    assert "unable to get local issuer certificate" in verify_failure(handle.url + "/v1/status/leader", None)
    with pytest.raises(requests.exceptions.SSLError):
        consul_client.Consul(host=handle.host, port=handle.port, scheme="https").catalog.services()


@pytest.mark.parametrize("which, message", [("wrong_name", "IP address mismatch"),
                                            ("expired", "certificate has expired"),
                                            ("self_signed", "self-signed certificate")])
def test_consul_certificates_a_client_must_refuse(consul_emulator, tls_certs, which, message):
    handle = consul_emulator(tls=getattr(tls_certs, which), ca=tls_certs.ca)
    assert message.replace("-", " ") in verify_failure(handle.url + "/v1/status/leader", tls_certs.ca).replace(
        "-", " ")


def test_plain_http_to_an_https_port_fails_and_a_silent_client_stalls_no_one(consul_emulator, tls_certs):
    handle = consul_emulator(tls=tls_certs.good, ca=tls_certs.ca)
    with socket.create_connection((handle.host, handle.port)):  # connects, never says a word
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen("http://%s:%d/v1/status/leader" % (handle.host, handle.port), timeout=10)
        started = time.time()
        assert https_get(handle.url + "/v1/status/leader", tls_certs.ca)[0] == 200
        assert time.time() - started < 5


def test_keeper_over_https(keeper_emulator, tls_certs):
    keeper = keeper_emulator(tls=tls_certs.good, ca=tls_certs.ca)
    assert keeper.request("GET", "/api/v3/ping")[0] == 200
    assert keeper.request("PUT", "/api/v3/kvs/key/edgex/v4/core-data/Writable/LogLevel", {"value": "INFO"})[0] == 200
    assert "unable to get local issuer certificate" in verify_failure(keeper.url + "/api/v3/ping", None)
    wrong = keeper_emulator(tls=tls_certs.wrong_name, ca=tls_certs.ca)
    assert "IP address mismatch" in verify_failure(wrong.url + "/api/v3/ping", tls_certs.ca)


def test_secure_keeper_over_https(keeper_emulator, tls_certs):
    keeper = keeper_emulator(tokens=["jwt"], tls=tls_certs.good, ca=tls_certs.ca)
    assert keeper.request("GET", "/api/v3/registry/all", token="") == (401, {"message": "Unauthorized"})
    assert keeper.request("GET", "/api/v3/registry/all")[0] == 200
