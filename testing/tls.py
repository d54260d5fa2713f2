"""A certificate of a test's own for 127.0.0.1 (made with openssl), and a server context for it."""
from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path


def can_make_certificates() -> str | None:
    """None when openssl is here, else why not (for pytest.skip)."""
    return None if shutil.which("openssl") else "openssl is not installed: cannot make a test certificate"


def self_signed(folder: Path) -> tuple[str, str]:
    """(certificate, key) in PEM files under ``folder``, for 127.0.0.1, valid two days."""
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def server_context(certificate: tuple[str, str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    return ctx
