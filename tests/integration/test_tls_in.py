"""
test_tls_in.py: TLS in the SMTP server (docs/tls.md), with real clients.

- Python's smtplib starttls(), swaks --tls, swaks --tls-on-connect
  (smtps_listen) and `openssl s_client -starttls smtp` complete transactions;
  the Received: header of the delivered message names the TLS version and
  cipher, and says ESMTPS.
- TLS 1.0 and 1.1 handshakes are refused by the server (the client is told
  to allow them with @SECLEVEL=0, so the refusal is moat's).
- "STARTTLS\\r\\nRSET\\r\\n" in one send: no reply to RSET, in clear or in
  TLS (CVE-2011-0411); the session forgets its EHLO after STARTTLS.
- STARTTLS refused inside a transaction, before EHLO, twice, and where TLS
  is not offered; submission_listen with submission_tls = required answers
  MAIL before STARTTLS with 530.
- SNI chooses among two certificates (RSA and ECDSA).
- Which session program runs: with certificates smtpd-session (TLS), and
  without them smtpd-session-plain, which has no TLS code: no STARTTLS in
  EHLO or HELP, 502 to STARTTLS, and no OpenSSL text in the executable.
- testssl (Debian's testssl.sh) against the STARTTLS port: no finding of
  severity HIGH or CRITICAL.
- A reload (moatctl reload) with new certificate files: a new connection
  gets the new certificate, a connection opened before finishes its
  transaction.

Certificates are made at test time with the openssl command line
(tls_certs.py).
"""
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import moat_harness as h
import tls_certs

SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
TESTSSL = shutil.which("testssl") or "/usr/bin/testssl"


# ---------------------------------------------------------------- helpers

def _certs(ctx, names=(("mx1.test", "rsa"),)):
    """A CA and one certificate per (name, key type) under the test dir."""
    d = ctx.dir / "certs"
    d.mkdir(exist_ok=True)
    ca = tls_certs.make_ca(d)
    out = [tls_certs.make_cert(d, ca, name, sans=[name], key_type=kt)
           for name, kt in names]
    return ca, out


def _tls_moat(ctx, certs, **settings):
    """moatd with these certificates (chains, keys in the same order)."""
    # With certificates moatd also starts the keyholder.
    h.LIBEXEC.setdefault("keyholder", h.BUILD / "keyholder" / "keyholder")
    settings.setdefault("smtpd_tls_cert_files", " ".join(str(c["chain"]) for c in certs))
    settings.setdefault("smtpd_tls_key_files", " ".join(str(c["key"]) for c in certs))
    return ctx.moat(**settings)


def _client_ctx(minimum=None, maximum=None, ciphers=None):
    """A client context that does not verify (the tests check what they need)."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        c.minimum_version = minimum
    if maximum is not None:
        c.maximum_version = maximum
    if ciphers is not None:
        c.set_ciphers(ciphers)
    return c


def _ehlo_keywords(client, name="client.test"):
    client.send(f"EHLO {name}\r\n")
    code, texts = client.reply()
    assert code == 250, f"EHLO: {code} {texts}"
    return [t.split()[0].upper() for t in texts[1:] if t.strip()]


def _starttls(port, sni=None, ctx=None):
    """A RawClient that did EHLO, STARTTLS and the handshake (SNI sni)."""
    c = h.RawClient(port)
    code, _ = c.reply()
    assert code == 220, "greeting"
    assert "STARTTLS" in _ehlo_keywords(c), "STARTTLS not offered"
    c.send("STARTTLS\r\n")
    line = c.reply_line()
    assert line == "220 2.0.0 Ready to start TLS", f"STARTTLS: {line!r}"
    assert c.buf == b"", f"bytes after the 220: {c.buf!r}"
    c.sock = (ctx or _client_ctx()).wrap_socket(c.sock, server_hostname=sni)
    return c


def _transaction(c, rcpt="bob@localhost", subject="tls"):
    """EHLO, MAIL, RCPT, DATA over a connected RawClient; the queue id."""
    _ehlo_keywords(c)
    for cmd, want in ((f"MAIL FROM:<alice@example.org>", 250), (f"RCPT TO:<{rcpt}>", 250),
                      ("DATA", 354)):
        c.send(cmd + "\r\n")
        code, texts = c.reply()
        assert code == want, f"{cmd}: {code} {texts}"
    c.send(h.dot_stuff(h.make_message([("Subject", subject)], ["over TLS"])))
    line = c.reply_line()
    m = h.QID_RE.search(line)
    assert line.startswith("250 ") and m, f"end of data: {line!r}"
    return m.group(1)


def _der(cert_path):
    """The DER bytes of the first certificate in a PEM file."""
    return ssl.PEM_cert_to_DER_cert(open(cert_path).read())


def _received_tls(moat, user, n=1):
    """The unfolded Received: headers of the n-th message in maildir/user."""
    files = moat.wait_maildir(user, n)
    lines = files[n - 1].read_text(errors="replace").replace("\r\n", "\n").split("\n")
    head, _ = h.split_message(lines)
    return h.header_values(head, "Received")


def _assert_tls_received(received, version=r"TLSv1\.[23]"):
    import re
    rx = re.compile(r"^from \S+ \(\[127\.0\.0\.1\]\) \(using " + version +
                    r" with cipher [A-Z0-9_-]+ \(\d+/\d+ bits\)\) by moat\.test "
                    r"\(moat\) with ESMTPS id [0-9A-F]{16}")
    assert any(rx.search(r) for r in received), f"no TLS Received: header in {received}"


def _run(cmd, input_bytes=None, timeout=60):
    return subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout)


# ---------------------------------------------------------------- tests

def test_starttls_smtplib(ctx):
    """smtplib starttls(): offered, used, forgotten state, Received: header."""
    h.skip_unless_root()
    _, certs = _certs(ctx)
    moat = _tls_moat(ctx, certs)
    # Connecting in the constructor gives starttls() a host name to use.
    s = smtplib.SMTP(h.LOOPBACK, moat.port, local_hostname="client.test", timeout=15)
    try:
        h.expect(s.ehlo("client.test"), 250, "EHLO")
        assert s.has_extn("starttls"), "STARTTLS not in the EHLO reply"
        h.expect(s.starttls(context=_client_ctx()), 220, "STARTTLS")
        # The session forgot the EHLO: MAIL needs a new one.
        h.expect(s.docmd("MAIL FROM:<alice@example.org>"), 503, "MAIL before EHLO under TLS")
        h.expect(s.ehlo("client.test"), 250, "EHLO under TLS")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        h.expect(s.docmd("STARTTLS"), 503, "STARTTLS inside TLS")
        s.sendmail("alice@example.org", ["bob@localhost"],
                   h.make_message([("Subject", "smtplib")], ["hello over TLS"]))
        h.expect(s.docmd("QUIT"), 221, "QUIT")
    finally:
        s.close()
    _assert_tls_received(_received_tls(moat, "bob"))
    moat.wait_log(r"tls client=127\.0\.0\.1 mode=starttls version=TLSv1\.3 "
                  r"cipher=\S+ bits=\d+ sni=- cert=1 client_cert=none")


def test_swaks_tls_and_tls_on_connect(ctx):
    """swaks --tls on listen, swaks --tls-on-connect on smtps_listen."""
    h.skip_unless_root()
    h.require(SWAKS, "swaks")
    _, certs = _certs(ctx)
    smtps = h.free_port()
    moat = _tls_moat(ctx, certs, smtps_listen=f"127.0.0.1:{smtps}")
    for port, flag, user in ((moat.port, "--tls", "carol"), (smtps, "--tls-on-connect", "dave")):
        r = _run([SWAKS, "--server", "127.0.0.1", "--port", str(port), flag,
                  "--helo", "client.test", "--from", "alice@example.org",
                  "--to", f"{user}@localhost", "--timeout", "20"])
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and "250 2.0.0 Ok: queued as" in out, \
            f"swaks {flag}: exit {r.returncode}\n{out}{r.stderr.decode(errors='replace')}"
        _assert_tls_received(_received_tls(moat, user))
    moat.wait_log(r"connect client=127\.0\.0\.1:\d+ local=127\.0\.0\.1:%d tls=implicit" % smtps)
    moat.wait_log(r"tls client=127\.0\.0\.1 mode=implicit version=TLSv1\.[23] ")


def test_openssl_s_client_and_old_versions(ctx):
    """s_client -starttls smtp completes a transaction; TLS 1.0/1.1 refused."""
    h.skip_unless_root()
    h.require(OPENSSL, "openssl")
    _, certs = _certs(ctx)
    moat = _tls_moat(ctx, certs)
    dialogue = (b"EHLO client.test\nMAIL FROM:<alice@example.org>\n"
                b"RCPT TO:<erin@localhost>\nDATA\n")
    # s_client sends its own EHLO before STARTTLS; then our lines go in TLS
    # (-crlf turns each LF into CR LF).
    p = subprocess.Popen([OPENSSL, "s_client", "-starttls", "smtp", "-crlf", "-quiet",
                          "-connect", f"127.0.0.1:{moat.port}"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(dialogue)
        p.stdin.flush()
        time.sleep(1)
        p.stdin.write(b"Subject: s_client\n\nover TLS\n.\n")
        p.stdin.flush()
        time.sleep(1)
        p.stdin.write(b"QUIT\n")
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    text = out.decode(errors="replace")
    assert "250 2.0.0 Ok: queued as" in text and "221 2.0.0 Bye" in text, \
        f"s_client transaction:\n{text}\n{err.decode(errors='replace')}"
    _assert_tls_received(_received_tls(moat, "erin"))

    for flag in ("-tls1", "-tls1_1"):
        r = _run([OPENSSL, "s_client", "-starttls", "smtp", flag,
                  "-cipher", "DEFAULT:@SECLEVEL=0", "-connect", f"127.0.0.1:{moat.port}"],
                 input_bytes=b"QUIT\n", timeout=30)
        text = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        assert r.returncode != 0, f"{flag}: handshake succeeded:\n{text}"
        assert "protocol version" in text or "unsupported protocol" in text, \
            f"{flag}: refusal is not the server's protocol version alert:\n{text}"
    moat.wait_log(r"tls client=127\.0\.0\.1 mode=starttls handshake failed: .*"
                  r"(unsupported protocol|version)")


def test_starttls_injection_discarded(ctx):
    """CVE-2011-0411: commands pipelined after STARTTLS get no reply at all."""
    h.skip_unless_root()
    _, certs = _certs(ctx)
    moat = _tls_moat(ctx, certs)
    c = moat.raw()
    assert c.reply()[0] == 220
    _ehlo_keywords(c)
    c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n")
    assert c.reply_line() == "220 2.0.0 Ready to start TLS"
    # Nothing more in clear: the server now waits for our ClientHello.
    c.sock.settimeout(1.0)
    try:
        extra = c.sock.recv(4096)
    except socket.timeout:
        extra = b""
    assert extra == b"" and c.buf == b"", f"clear text after the 220: {extra!r}"
    c.sock.settimeout(15)
    c.sock = _client_ctx().wrap_socket(c.sock)
    # Nor inside TLS: no reply waiting, and the first reply is our EHLO's.
    assert c.pending_replies(wait=1.0) == [], "a reply to the injected commands inside TLS"
    c.send("EHLO client.test\r\n")
    code, texts = c.reply()
    assert code == 250 and texts[0] == "moat.test" and len(texts) > 1, \
        f"first reply under TLS is not the EHLO reply: {code} {texts}"
    # The injected MAIL did not open a transaction either.
    c.send("RCPT TO:<bob@localhost>\r\n")
    assert c.reply_line() == "503 5.5.1 Error: need MAIL command"
    moat.wait_log(r"client=127\.0\.0\.1 starttls: discarded 36 bytes sent after STARTTLS")


def test_starttls_refusals(ctx):
    """STARTTLS before EHLO, inside a transaction, with an argument; where not offered."""
    h.skip_unless_root()
    _, certs = _certs(ctx)
    moat = _tls_moat(ctx, certs)
    c = moat.raw()
    assert c.reply()[0] == 220
    cases = [
        ("STARTTLS", "503 5.5.1 Error: send HELO/EHLO first"),
        ("EHLO client.test", None),
        ("STARTTLS now", "501 5.5.4 Syntax: STARTTLS"),
        ("MAIL FROM:<alice@example.org>", "250 2.1.0 Ok"),
        ("STARTTLS", "503 5.5.1 Error: MAIL transaction in progress"),
        ("RSET", "250 2.0.0 Ok"),
    ]
    for cmd, want in cases:
        c.send(cmd + "\r\n")
        code, texts = c.reply()
        if want is not None:
            got = f"{code} {texts[-1]}"
            assert got == want, f"{cmd}: {got!r}, want {want!r}"
    c.send("STARTTLS\r\n")
    assert c.reply_line() == "220 2.0.0 Ready to start TLS", "STARTTLS after RSET"
    c.close()

    # smtpd_tls = none: not offered, and the verb is not implemented there.
    plain = _tls_moat(ctx, certs, name="plain", smtpd_tls="none")
    c = plain.raw()
    assert c.reply()[0] == 220
    assert "STARTTLS" not in _ehlo_keywords(c)
    c.send("STARTTLS\r\n")
    assert c.reply_line() == "502 5.5.1 Error: command not implemented"


def test_submission_requires_tls(ctx):
    """submission_listen, submission_tls = required: 530 before STARTTLS."""
    h.skip_unless_root()
    _, certs = _certs(ctx)
    sub = h.free_port()
    moat = _tls_moat(ctx, certs, submission_listen=f"127.0.0.1:{sub}")
    c = h.RawClient(sub)
    ctx.add_cleanup(c.close)
    assert c.reply()[0] == 220
    assert "STARTTLS" in _ehlo_keywords(c)
    c.send("MAIL FROM:<alice@example.org>\r\n")
    assert c.reply_line() == "530 5.7.0 Must issue a STARTTLS command first"
    c.send("STARTTLS\r\n")
    assert c.reply_line() == "220 2.0.0 Ready to start TLS"
    c.sock = _client_ctx().wrap_socket(c.sock)
    _transaction(c, rcpt="frank@localhost", subject="submission")
    _assert_tls_received(_received_tls(moat, "frank"))
    moat.wait_log(r"connect client=127\.0\.0\.1:\d+ local=127\.0\.0\.1:%d tls=required" % sub)
    # The same MAIL on the listen port (smtpd_tls = may) needs no TLS.
    c2 = moat.raw()
    assert c2.reply()[0] == 220
    _ehlo_keywords(c2)
    c2.send("MAIL FROM:<alice@example.org>\r\n")
    assert c2.reply_line() == "250 2.1.0 Ok"


def test_sni_selects_certificate(ctx):
    """Two certificates (RSA, ECDSA): SNI picks one, no or unknown SNI gets the first."""
    h.skip_unless_root()
    _, certs = _certs(ctx, (("mx1.test", "rsa"), ("mx2.test", "ec")))
    moat = _tls_moat(ctx, certs)
    for sni, want in (("mx2.test", certs[1]), ("mx1.test", certs[0]),
                      (None, certs[0]), ("unknown.test", certs[0])):
        c = _starttls(moat.port, sni=sni)
        got = c.sock.getpeercert(binary_form=True)
        assert got == _der(want["cert"]), f"SNI {sni}: wrong certificate"
        _ehlo_keywords(c)
        c.send("QUIT\r\n")
        assert c.reply()[0] == 221
        c.close()
    moat.wait_log(r"tls client=127\.0\.0\.1 mode=starttls version=\S+ cipher=\S+ "
                  r"bits=\d+ sni=mx2\.test cert=2")
    # s_client too: the subject it prints is the one SNI asked for.
    r = _run([OPENSSL, "s_client", "-starttls", "smtp", "-servername", "mx2.test",
              "-connect", f"127.0.0.1:{moat.port}"], input_bytes=b"QUIT\n", timeout=30)
    assert "CN = mx2.test" in r.stdout.decode(errors="replace"), "s_client -servername mx2.test"


def test_testssl_no_high_findings(ctx):
    """testssl --starttls smtp: no finding of severity HIGH or CRITICAL."""
    h.skip_unless_root()
    h.require(TESTSSL, "testssl (Debian package testssl.sh)")
    d = ctx.dir / "certs"
    d.mkdir()
    ca = tls_certs.make_ca(d)
    # Valid for the address testssl is given, from a CA it is told to trust.
    cert = tls_certs.make_cert(d, ca, "mx1.test", sans=["mx1.test", "127.0.0.1"])
    moat = _tls_moat(ctx, [cert], smtpd_client_limit=1000, smtpd_error_limit=1000)
    out = ctx.dir / "testssl.json"
    cmd = [TESTSSL, "--starttls", "smtp", "--add-ca", ca["cert"],
           "--jsonfile-pretty", str(out), "--quiet",
           "--color", "0", "--warnings", "off", "--nodns", "none", "--fast",
           "--connect-timeout", "10", "--openssl-timeout", "10",
           "--protocols", "--server-defaults", "--server-preference", "--fs",
           "--heartbleed", "--ccs", "--renegotiation", "--crime", "--poodle",
           "--sweet32", "--freak", "--logjam", "--drown", "--beast", "--robot",
           f"127.0.0.1:{moat.port}"]
    r = _run(cmd, timeout=170)
    log = ctx.dir / "testssl.out"
    log.write_bytes(r.stdout + r.stderr)
    ctx.add_log("testssl output", log)
    assert out.exists(), f"testssl wrote no JSON (exit {r.returncode})"
    doc = json.loads(out.read_text())
    findings = []
    for scan in doc.get("scanResult", []):
        for section, items in scan.items():
            if isinstance(items, list):
                findings += [f for f in items if isinstance(f, dict)]
    assert findings, "testssl reported nothing: the scan did not run"
    # The test certificate's own lifetime (30 days) and its lack of CRL and
    # OCSP addresses are the test CA's business, not moat's TLS: those
    # three findings are shown but do not count.
    pki_only = {"cert_expirationStatus", "cert_notAfter", "cert_revocation"}
    for f in findings:
        if f.get("id") in pki_only:
            ctx.note(f"testssl {f.get('severity')} (test certificate, not counted): "
                     f"{f.get('id')}: {f.get('finding')}")
    bad = [f for f in findings if f.get("id") not in pki_only and
           str(f.get("severity", "")).upper() in ("HIGH", "CRITICAL")]
    for f in bad:
        print(f"testssl {f.get('severity')}: {f.get('id')}: {f.get('finding')}")
    assert not bad, f"{len(bad)} HIGH/CRITICAL testssl finding(s): " + \
        "; ".join(f"{f.get('id')}={f.get('finding')}" for f in bad)
    ids = {f.get("id"): f for f in findings}
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        if proto in ids:
            assert "not offered" in str(ids[proto].get("finding", "")), \
                f"testssl: {proto}: {ids[proto].get('finding')}"


test_testssl_no_high_findings.timeout = 200


def test_reload_new_certificate(ctx):
    """New cert+key files and a reload: new sessions use them, old ones finish."""
    h.skip_unless_root()
    ca, certs = _certs(ctx)
    live = ctx.dir / "live"
    live.mkdir()
    chain, key = live / "chain.pem", live / "key.pem"
    shutil.copy(certs[0]["chain"], chain)
    shutil.copy(certs[0]["key"], key)
    moat = _tls_moat(ctx, [{"chain": chain, "key": key}])

    old = _starttls(moat.port)
    assert old.sock.getpeercert(binary_form=True) == _der(certs[0]["cert"])
    _ehlo_keywords(old)
    old.send("MAIL FROM:<alice@example.org>\r\n")
    assert old.reply()[0] == 250

    new_cert = tls_certs.make_cert(ctx.dir / "certs", ca, "mx1.test", sans=["mx1.test"],
                                   key_type="ec")
    shutil.copy(new_cert["chain"], chain)
    shutil.copy(new_cert["key"], key)
    r = moat.moatctl("reload")
    assert r.returncode == 0, f"moatctl reload: {r.returncode} {r.stdout}{r.stderr}"
    moat.wait_log(r"reload=ok ")

    def new_cert_served():
        c = _starttls(moat.port)
        try:
            return c.sock.getpeercert(binary_form=True) == _der(new_cert["cert"])
        finally:
            c.close()
    h.wait_until(new_cert_served, 15, "a new session to present the new certificate")
    c = _starttls(moat.port)
    _transaction(c, rcpt="gina@localhost", subject="after reload")
    c.close()

    # The session from before the reload completes its transaction.
    for cmd, want in (("RCPT TO:<hank@localhost>", 250), ("DATA", 354)):
        old.send(cmd + "\r\n")
        assert old.reply()[0] == want, cmd
    old.send(h.dot_stuff(h.make_message([("Subject", "before reload")], ["old session"])))
    line = old.reply_line()
    assert line.startswith("250 2.0.0 Ok: queued as"), f"old session: {line!r}"
    old.close()
    _assert_tls_received(_received_tls(moat, "hank"))
    _assert_tls_received(_received_tls(moat, "gina"))


def _session_exe(moat, client):
    """The executable of the session serving client (a RawClient that
    has had its greeting)."""
    p = moat.wait_role("session")
    return os.path.basename(os.readlink(f"/proc/{p.pid}/exe"))


def _help_text(client):
    client.send("HELP\r\n")
    code, texts = client.reply()
    assert code == 214, f"HELP: {code} {texts}"
    return " ".join(texts)


def test_session_program_follows_certificates(ctx):
    """Certificates: smtpd-session, STARTTLS offered and in HELP.  None:
    smtpd-session-plain, which carries no TLS code, answers STARTTLS 502."""
    h.skip_unless_root()
    _, certs = _certs(ctx)
    moat = _tls_moat(ctx, certs)
    c = moat.raw()
    assert c.reply()[0] == 220
    assert _session_exe(moat, c) == "smtpd-session"
    assert "STARTTLS" in _ehlo_keywords(c)
    assert "STARTTLS" in _help_text(c), "HELP lacks STARTTLS where it is offered"
    c.close()
    moat.stop()

    plain = ctx.moat(name="nocert")
    c = plain.raw()
    assert c.reply()[0] == 220
    assert _session_exe(plain, c) == "smtpd-session-plain"
    assert "STARTTLS" not in _ehlo_keywords(c)
    assert "STARTTLS" not in _help_text(c), "HELP lists STARTTLS where it is not offered"
    c.send("STARTTLS\r\n")
    assert c.reply_line() == "502 5.5.1 Error: command not implemented"
    c.send("QUIT\r\n")
    assert c.reply()[0] == 221
    c.close()
    exe = (h.BUILD / "smtpd-session" / "smtpd-session-plain").read_bytes()
    tls = (h.BUILD / "smtpd-session" / "smtpd-session").read_bytes()
    # libssl's table of cipher names is in the TLS build, not the plain one.
    assert b"TLS_AES_256_GCM_SHA384" in tls, "the check below could not fail"
    assert b"TLS_AES_256_GCM_SHA384" not in exe, "smtpd-session-plain carries OpenSSL"


def test_chain_gone_after_start(ctx):
    """A chain file removed under a running moat: sessions log "tls
    unavailable", STARTTLS is no longer offered (and answered 454), an
    implicit-TLS connection is closed without a handshake, and no session
    dies of it."""
    h.skip_unless_root()
    _, certs = _certs(ctx)
    smtps = h.free_port()
    moat = _tls_moat(ctx, certs, smtps_listen=f"127.0.0.1:{smtps}")
    chain = certs[0]["chain"]
    os.rename(chain, str(chain) + ".away")
    c = moat.raw()
    assert c.reply()[0] == 220
    assert "STARTTLS" not in _ehlo_keywords(c)
    c.send("STARTTLS\r\n")
    assert c.reply_line() == "454 4.7.0 TLS not available due to local problem"
    c.send("QUIT\r\n")
    assert c.reply()[0] == 221
    c.close()
    with socket.create_connection(("127.0.0.1", smtps), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello")     # the start of a ClientHello
        s.settimeout(10)
        got = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except ConnectionResetError:
            pass    # closed with our unread bytes still queued: a reset
    assert got == b"", f"implicit TLS without a chain answered {got[:80]!r}"
    moat.wait_log(r"tls unavailable: .*" + os_name(chain))
    moat.wait_log(r"mode=implicit handshake failed: TLS not available")
    assert "status=killed" not in moat.log(), "a session died"


def os_name(path):
    """A file's name, quoted for a regular expression."""
    import re
    return re.escape(os.path.basename(str(path)))
