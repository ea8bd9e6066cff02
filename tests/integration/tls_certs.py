"""
tls_certs.py: a test CA and certificates, made at test time with the
openssl command line (nothing is checked in, nothing expires under us).

    ca = make_ca(d)                     -> {"cert": path, "key": path}
    leaf = make_cert(d, ca, "mx.test", sans=["mx.test", "127.0.0.1"],
                     key_type="rsa")    -> {"cert": path, "key": path,
                                            "chain": path}

Files are PEM.  "chain" is the leaf followed by the CA certificate (what a
server sends).  A SAN that parses as an IP address becomes IP:..., anything
else DNS:...; sans defaults to [name].  key_type "rsa" is RSA 2048, "ec"
is P-256.  Keys are written mode 0600.
"""
import ipaddress
import os
import subprocess
from pathlib import Path

DAYS = "30"


def _run(*argv):
    r = subprocess.run(["openssl", *argv], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (argv[0], r.stderr.strip()))


def _key(path, key_type):
    if key_type == "rsa":
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", str(path))
    elif key_type == "ec":
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(path))
    else:
        raise ValueError("key_type must be rsa or ec, not %r" % (key_type,))
    os.chmod(path, 0o600)


def _safe(name):
    return "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in name) or "cert"


def make_ca(d, name="moat test CA", key_type="ec"):
    """A self-signed CA in directory d: {"cert": ..., "key": ...}."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    key, cert = d / "ca.key", d / "ca.pem"
    _key(key, key_type)
    _run("req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", DAYS,
         "-subj", "/CN=" + name,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-addext", "subjectKeyIdentifier=hash")
    return {"cert": str(cert), "key": str(key)}


def _san(names):
    out = []
    for n in names:
        try:
            ipaddress.ip_address(n)
            out.append("IP:" + n)
        except ValueError:
            out.append("DNS:" + n)
    return ",".join(out)


def make_cert(d, ca, name, sans=None, key_type="rsa"):
    """A server certificate for name signed by ca (from make_ca)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    base = d / ("%s-%s" % (_safe(name), key_type))
    key, csr, cert = Path(str(base) + ".key"), Path(str(base) + ".csr"), \
        Path(str(base) + ".pem")
    chain, ext = Path(str(base) + ".chain.pem"), Path(str(base) + ".ext")
    _key(key, key_type)
    _run("req", "-new", "-key", str(key), "-out", str(csr), "-subj", "/CN=" + name)
    ext.write_text("basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n"
                   "subjectAltName=%s\n" % _san(sans if sans else [name]))
    _run("x509", "-req", "-in", str(csr), "-CA", ca["cert"], "-CAkey", ca["key"],
         "-CAcreateserial", "-out", str(cert), "-days", DAYS, "-sha256",
         "-extfile", str(ext))
    chain.write_text(cert.read_text() + Path(ca["cert"]).read_text())
    return {"cert": str(cert), "key": str(key), "chain": str(chain)}
