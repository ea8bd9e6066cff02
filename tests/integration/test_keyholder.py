"""
test_keyholder.py: the TLS private keys live in the keyholder, never in a
session (keyholder/, smtpd-session/tls_keys.c, listener/keys.c).

- With certificates configured moatd runs a keyholder as keyholder_user
  (moat-keys), chrooted in run_directory/empty, with no capabilities,
  no_new_privs and its seccomp filter, holding only moatd's channel and
  one channel per session; a STARTTLS session with an RSA and one with an
  ECDSA certificate complete, and the keyholder logs the signatures.
- The memory of a live session, read through /proc/PID/maps and
  /proc/PID/mem while it is mid-conversation after STARTTLS, holds none
  of the key's private bytes (the DER private key, the PEM text, the
  private exponent / primes / EC private scalar in either byte order);
  the same search in the keyholder's memory finds them, so the search
  itself is shown to work.  moatd's memory does not hold them either
  (it wiped the text it read).
- A keyholder killed with SIGKILL is restarted by moatd and the next
  session's handshake works.
- A reload with new key files: a session that loaded the old certificate
  before the reload still finishes its handshake (the keyholder keeps
  the previous keys), a new session gets the new certificate.
- Without certificates no keyholder runs.
"""
import re
import signal
import socket
import ssl
import subprocess
import time

import moat_harness as h
import tls_certs

KEYHOLDER_USER = "moat-keys"


# ---------------------------------------------------------------- helpers

def _certs(ctx, specs=(("mx1.test", "rsa"), ("mx2.test", "ec"))):
    d = ctx.dir / "certs"
    d.mkdir(exist_ok=True)
    ca = tls_certs.make_ca(d)
    return ca, [tls_certs.make_cert(d, ca, name, sans=[name], key_type=kt)
                for name, kt in specs]


def _tls_moat(ctx, certs, **settings):
    h.LIBEXEC.setdefault("keyholder", h.BUILD / "keyholder" / "keyholder")
    settings.setdefault("smtpd_tls_cert_files", " ".join(c["chain"] for c in certs))
    settings.setdefault("smtpd_tls_key_files", " ".join(c["key"] for c in certs))
    return ctx.moat(**settings)


def _keyholders(moat):
    return [p for p in moat.processes() if p.name == "keyholder"]


def _keyholder(moat, exclude=()):
    return h.wait_until(lambda: [p for p in _keyholders(moat) if p.pid not in exclude],
                        15, "a keyholder process under moatd")[0]


def _client_ctx(version=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if version is not None:
        c.minimum_version = c.maximum_version = version
    return c


def _ehlo(c):
    c.send("EHLO client.test\r\n")
    code, texts = c.reply()
    assert code == 250, f"EHLO: {code} {texts}"
    return [t.split()[0].upper() for t in texts[1:] if t.strip()]


def _connect(moat):
    """A RawClient past the greeting and EHLO, STARTTLS offered."""
    c = moat.raw()
    code, _ = c.reply()
    assert code == 220, "greeting"
    assert "STARTTLS" in _ehlo(c), "STARTTLS not offered"
    return c


def _starttls(c, sni, version=None):
    c.send("STARTTLS\r\n")
    line = c.reply_line()
    assert line == "220 2.0.0 Ready to start TLS", f"STARTTLS: {line!r}"
    c.sock = _client_ctx(version).wrap_socket(c.sock, server_hostname=sni)
    return c.sock.getpeercert(binary_form=True)


def _der(cert_path):
    return ssl.PEM_cert_to_DER_cert(open(cert_path).read())


def _openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)
    assert r.returncode == 0, f"openssl {args[0]}: {r.stderr.decode(errors='replace')}"
    return r.stdout


def _hex_field(text, label):
    """The bytes of a hex dump field of `openssl pkey -text` (leading 00 cut)."""
    m = re.search(r"^" + re.escape(label) + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
    assert m, f"no {label} in openssl pkey -text output"
    raw = bytes.fromhex(re.sub(r"[^0-9a-f]", "", m.group(1)))
    return raw.lstrip(b"\0")


def _needles(key_path):
    """Byte strings that only a holder of the private key has in memory."""
    der = _openssl("pkey", "-in", key_path, "-outform", "DER")
    text = _openssl("pkey", "-in", key_path, "-text", "-noout").decode()
    pem_lines = [ln for ln in open(key_path).read().splitlines()
                 if ln and not ln.startswith("-----")]
    needles = {"PKCS#8 DER": der[len(der) // 3: len(der) // 3 + 48],
               "PEM line": pem_lines[len(pem_lines) // 2].encode()}
    labels = (("privateExponent", "prime1", "prime2") if "privateExponent" in text
              else ("priv",))
    for label in labels:
        v = _hex_field(text, label)
        assert len(v) >= 24, f"{label} is too short to search for"
        mid = len(v) // 2 - 12
        needles[f"{label} (big-endian)"] = v[mid: mid + 24]
        needles[f"{label} (little-endian)"] = v[::-1][mid: mid + 24]
    return needles


def _memory(pid):
    """Every readable mapping of pid, as one list of byte strings."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            addr, perms = fields[0], fields[1]
            name = fields[5] if len(fields) > 5 else ""
            if not perms.startswith("r") or name in ("[vvar]", "[vsyscall]"):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            try:
                mem.seek(lo)
                chunks.append(mem.read(hi - lo))
            except (OSError, ValueError, OverflowError):
                continue
    assert chunks, f"nothing readable in /proc/{pid}/mem"
    return chunks


def _found(pid, needles):
    """The names of the needles present in pid's memory."""
    chunks = _memory(pid)
    return sorted(n for n, b in needles.items() if any(b in c for c in chunks))


def _status(pid):
    return h.read_status(pid)


# ---------------------------------------------------------------- tests

def test_keyholder_process_and_signatures(ctx):
    """The keyholder's privileges and descriptors; RSA and ECDSA handshakes."""
    h.skip_unless_root()
    if h._uid_of(KEYHOLDER_USER) is None:
        raise h.Skip(f"user {KEYHOLDER_USER} missing (bootstrap creates it)")
    _, certs = _certs(ctx)
    moat = _tls_moat(ctx, certs)
    kh = _keyholder(moat)
    st = _status(kh.pid)
    assert kh.uid == h._uid_of(KEYHOLDER_USER), f"keyholder runs as uid {kh.uid}"
    assert st.get("Seccomp") == "2" and st.get("NoNewPrivs") == "1", \
        f"keyholder Seccomp={st.get('Seccomp')} NoNewPrivs={st.get('NoNewPrivs')}"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert st.get(cap) == "0000000000000000", f"keyholder {cap}={st.get(cap)}"
    import os
    assert os.readlink(f"/proc/{kh.pid}/root") == str(moat.run_dir / "empty"), \
        "keyholder is not chrooted in run_directory/empty"
    fds = sorted(int(f) for f in os.listdir(f"/proc/{kh.pid}/fd"))
    assert fds == [0, 1, 2, 4], f"keyholder descriptors at rest: {fds}"
    moat.wait_log(r"keyholder\[\d+\]: .*keys=2 generation=1 held=2")

    # RSA (TLS 1.3: RSA-PSS), RSA over TLS 1.2, ECDSA over both.
    for sni, cert, version in (("mx1.test", certs[0], ssl.TLSVersion.TLSv1_3),
                               ("mx1.test", certs[0], ssl.TLSVersion.TLSv1_2),
                               ("mx2.test", certs[1], ssl.TLSVersion.TLSv1_3),
                               ("mx2.test", certs[1], ssl.TLSVersion.TLSv1_2)):
        c = _connect(moat)
        session = moat.wait_role("session")
        peer = _starttls(c, sni, version)
        assert peer == _der(cert["cert"]), f"{sni}: wrong certificate"
        assert "STARTTLS" not in _ehlo(c), "STARTTLS offered inside TLS"
        # While the session lives, the keyholder holds its channel.
        kfds = os.listdir(f"/proc/{kh.pid}/fd")
        assert len(kfds) == 5, f"keyholder descriptors with one session: {kfds}"
        c.send("QUIT\r\n")
        assert c.reply()[0] == 221, "QUIT"
        c.close()
        moat.wait_log(r"keyholder\[\d+\]: .*session=%d sign=ok bytes=\d+" % session.pid)
    h.wait_until(lambda: len(os.listdir(f"/proc/{kh.pid}/fd")) == 4, 10,
                 "the keyholder to close the ended sessions' channels")


test_keyholder_process_and_signatures.timeout = 120


def test_session_memory_holds_no_private_key(ctx):
    """Private key bytes: absent from a live TLS session, present in the keyholder."""
    h.skip_unless_root()
    _, certs = _certs(ctx)
    moat = _tls_moat(ctx, certs)
    kh = _keyholder(moat)
    for sni, cert in (("mx1.test", certs[0]), ("mx2.test", certs[1])):
        needles = _needles(cert["key"])
        c = _connect(moat)
        session = moat.wait_role("session")
        assert _status(session.pid).get("Seccomp") == "2", "session not sandboxed"
        _starttls(c, sni)
        _ehlo(c)
        c.send("MAIL FROM:<alice@example.org>\r\n")
        assert c.reply()[0] == 250, "MAIL under TLS"
        # Mid-conversation, after the handshake: read the session.
        in_session = _found(session.pid, needles)
        in_keyholder = _found(kh.pid, needles)
        in_moatd = _found(moat.proc.pid, needles)
        ctx.note(f"{sni}: needles={len(needles)} session={in_session} "
                 f"keyholder={in_keyholder} moatd={in_moatd}")
        assert in_session == [], f"{sni}: the session holds private key bytes: {in_session}"
        assert in_keyholder, f"{sni}: the search finds nothing in the keyholder either"
        assert in_moatd == [], f"{sni}: moatd still holds private key bytes: {in_moatd}"
        c.send("QUIT\r\n")
        c.close()


test_session_memory_holds_no_private_key.timeout = 120


def test_keyholder_restarted_after_crash(ctx):
    """SIGKILL to the keyholder: moatd restarts it; the next handshake works."""
    h.skip_unless_root()
    _, certs = _certs(ctx, (("mx1.test", "ec"),))
    moat = _tls_moat(ctx, certs)
    old = _keyholder(moat)
    h.kill_quietly(old.pid, signal.SIGKILL)
    moat.wait_log(r"child=keyholder pid=%d status=killed signal=SIGKILL" % old.pid)
    new = _keyholder(moat, exclude=(old.pid,))
    moat.wait_log(r"keyholder\[%d\]: .*keys=1 generation=1" % new.pid)
    c = _connect(moat)
    assert _starttls(c, "mx1.test") == _der(certs[0]["cert"]), "certificate after restart"
    _ehlo(c)
    c.send("QUIT\r\n")
    c.close()


test_keyholder_restarted_after_crash.timeout = 60


def test_reload_keeps_previous_keys(ctx):
    """A session that loaded the old certificate finishes after a key reload."""
    h.skip_unless_root()
    ca, certs = _certs(ctx, (("mx1.test", "rsa"),))
    moat = _tls_moat(ctx, certs)
    kh = _keyholder(moat)
    old_der = _der(certs[0]["cert"])
    early = _connect(moat)     # this session has loaded the old certificate
    # New key and certificate at the same paths, then reload.
    d = ctx.dir / "certs-new"
    new = tls_certs.make_cert(d, ca, "mx1.test", sans=["mx1.test"], key_type="rsa")
    for k in ("chain", "key", "cert"):
        open(certs[0][k], "w").write(open(new[k]).read())
    r = moat.moatctl("reload")
    assert r.returncode == 0, f"moatctl reload: {r.stdout}{r.stderr}"
    moat.wait_log(r"keyholder\[%d\]: .*keys=1 generation=2 held=2" % kh.pid)
    assert _starttls(early, "mx1.test") == old_der, "the early session's certificate"
    _ehlo(early)
    early.send("QUIT\r\n")
    early.close()
    late = _connect(moat)
    assert _starttls(late, "mx1.test") == _der(new["cert"]), "new session, new certificate"
    _ehlo(late)
    late.send("QUIT\r\n")
    late.close()
    assert _keyholder(moat).pid == kh.pid, "the keyholder was restarted by the reload"


test_reload_keeps_previous_keys.timeout = 90


def test_no_keyholder_without_certificates(ctx):
    """Without smtpd_tls_cert_files moatd starts no keyholder."""
    h.skip_unless_root()
    moat = ctx.moat()
    moat.wait_role("qmgr")
    assert h.stays_false(lambda: _keyholders(moat), 1.5), "a keyholder runs without TLS"


def test_config_check_pairs_keys(ctx):
    """moatd -n: a key that is not its certificate's, or of a type the
    keyholder cannot sign with, is a configuration error on its line."""
    _, (rsa, ec) = _certs(ctx)
    ed = ctx.dir / "certs" / "ed25519.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(ed)],
                   check=True, capture_output=True, timeout=30)
    cases = [
        ("matching pairs", [rsa["chain"], ec["chain"]], [rsa["key"], ec["key"]], None),
        ("keys swapped", [rsa["chain"], ec["chain"]], [ec["key"], rsa["key"]],
         r"3: smtpd_tls_key_files: \S+ is not the key of the certificate in \S+"),
        ("ed25519 key", [rsa["chain"]], [str(ed)],
         r"3: smtpd_tls_key_files: \S+: key type ED25519; the keyholder signs with RSA"),
        ("missing certificate", [str(ctx.dir / "nope.pem")], [rsa["key"]],
         r"2: smtpd_tls_cert_files: \S+nope\.pem: no certificate"),
    ]
    for label, certs, keys, want in cases:
        conf = ctx.dir / "moat.conf"
        conf.write_text(f"listen = 127.0.0.1:2525\nsmtpd_tls_cert_files = {' '.join(certs)}\n"
                        f"smtpd_tls_key_files = {' '.join(keys)}\n")
        r = subprocess.run([str(h.MOATD), "-n", "-f", str(conf)], capture_output=True,
                           text=True, timeout=15)
        if want is None:
            assert r.returncode == 0, f"{label}: exit {r.returncode}\n{r.stderr}"
        else:
            assert r.returncode == 1 and re.search(rf"^{re.escape(str(conf))}:{want}",
                                                   r.stderr, re.M), \
                f"{label}: exit {r.returncode}, stderr:\n{r.stderr}"
