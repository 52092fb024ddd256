"""Certificates for HTTPS tests, made with Debian's ``openssl`` CLI (tests/testbed/install-deps.sh
installs it): a private CA and, signed by it, a good server certificate for 127.0.0.1/localhost,
one for another name, and an expired one; plus a self-signed server certificate no CA vouches for.

    def test_x(tls_certs):
        tls_certs.ca                      # path of the CA certificate a client should trust
        tls_certs.good                    # (cert, key) paths; also .wrong_name, .expired, .self_signed
"""

import os
import shutil
import subprocess

import pytest


def _openssl(*argv, cwd):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (tests/testbed/install-deps.sh installs it)")
    result = subprocess.run(["openssl"] + list(argv), cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(argv), result.stderr.strip()))


class TestCertificates(object):
    """Paths of the CA and of server certificates and keys, all under ``directory``."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = self._path("ca.pem")
        self._ca_key = self._path("ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self._ca_key, "-out", self.ca, "-days", "2", "-subj", "/CN=edgex.sysmgmt test CA",
                 cwd=directory)
        self.good = self._signed("good", "127.0.0.1", "IP:127.0.0.1,DNS:localhost", days=2)
        self.wrong_name = self._signed("wrong-name", "wrong.example", "DNS:wrong.example", days=2)
        # -days -1: notAfter a day before notBefore, i.e. expired since yesterday
        self.expired = self._signed("expired", "127.0.0.1", "IP:127.0.0.1,DNS:localhost", days=-1)
        self.self_signed = (self._path("self-signed.pem"), self._path("self-signed.key"))
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self.self_signed[1], "-out", self.self_signed[0], "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", cwd=directory)

    def _path(self, name):
        return os.path.join(self.directory, name)

    def _signed(self, name, common_name, alt_names, days):
        cert, key, csr, ext = (self._path(name + suffix) for suffix in (".pem", ".key", ".csr", ".ext"))
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                 "-out", csr, "-subj", "/CN=%s" % common_name, cwd=self.directory)
        with open(ext, "w") as handle:
            handle.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" % alt_names)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self._ca_key, "-CAcreateserial",
                 "-out", cert, "-days", str(days), "-extfile", ext, cwd=self.directory)
        return cert, key


@pytest.fixture
def tls_certs(tmp_path):
    """A fresh CA and server certificates in tmp_path (see TestCertificates)."""
    return TestCertificates(str(tmp_path / "tls"))
