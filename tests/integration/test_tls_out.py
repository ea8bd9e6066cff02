"""
test_tls_out.py: outbound STARTTLS and the per-destination TLS policy.

The next hop is an aiosmtpd server on 127.0.0.1 (relay_host =
[127.0.0.1]:PORT), with STARTTLS (a certificate from a test CA made at
test time, tls_certs.py) or without it.  The peer name the agent checks
for "verify" is then the route's host, 127.0.0.1: the "right" certificate
names it in an IP SAN, the "wrong" one names mx.test only.

    may + STARTTLS offered       delivered over TLS (agent log tls=..., the
                                 server's session is TLS)
    map "* verify", wrong name   deferred, reason in the log and moatctl
                                 show; the server never got MAIL
    encrypt, no STARTTLS         deferred, never sent (no MAIL at all)
    verify, right name + CA      delivered, verified=yes
"""
import re
import ssl
import threading

import tls_certs
from moat_harness import Skip, free_port, make_message, stays_false, wait_until

try:
    from aiosmtpd.controller import Controller
except ImportError:     # the suite installs python3-aiosmtpd
    Controller = None


class Downstream:
    """aiosmtpd handler that records every MAIL and message, and whether
    the session was in TLS when it came."""

    def __init__(self):
        self.mails = []         # (sender, tls?) per MAIL command
        self.messages = []      # (rcpts, content, cipher or None)
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.mails.append((address, session.ssl is not None))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_DATA(self, server, session, envelope):
        cipher = None
        if session.ssl is not None:
            cipher = session.ssl.get("cipher")
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content, cipher))
        return "250 2.0.0 Ok: queued"


def certs(ctx):
    """The test CA and two server certificates: one naming 127.0.0.1, one not."""
    d = ctx.dir / "certs"
    ca = tls_certs.make_ca(d)
    right = tls_certs.make_cert(d, ca, "mx.test", sans=["mx.test", "127.0.0.1"])
    wrong = tls_certs.make_cert(d, ca, "mx.test", sans=["mx.test"], key_type="ec")
    return ca, right, wrong


def start(ctx, cert=None, **settings):
    """moatd relaying to a fresh aiosmtpd (with STARTTLS when cert is
    given).  moatd starts first: it is not forked from a process that
    already runs the server's thread."""
    if Controller is None:
        raise Skip("python3-aiosmtpd is not installed")
    down = Downstream()
    port = free_port()
    moat = ctx.moat(relay_host=f"[127.0.0.1]:{port}", **settings)
    kw = {}
    if cert is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert["chain"], cert["key"])
        kw = {"tls_context": tls, "require_starttls": True}
    ctl = Controller(down, hostname="127.0.0.1", port=port, **kw)
    ctl.start()
    ctx.add_cleanup(ctl.stop)
    return moat, down


def send(moat, subject):
    return moat.send("sender@localhost", ["rcpt@example.net"],
                     make_message([("Subject", subject)], ["hello over TLS?"]))


def deferred_reason(moat, qid, text):
    """Wait for the agent's deferral of qid with text; moatctl show must
    give the same reason."""
    m = moat.wait_log(rf"id={qid} .*status=deferred \(([^\n]*{re.escape(text)}[^\n]*)\)",
                      what=f"deferral of {qid} with '{text}'")
    r = moat.moatctl("show", qid)
    assert r.returncode == 0, f"moatctl show {qid}: {r.returncode} {r.stdout}{r.stderr}"
    assert text in r.stdout, f"moatctl show {qid} lacks '{text}':\n{r.stdout}"
    return m.group(1)


def test_tls_may_delivers_over_tls(ctx):
    _, right, _ = certs(ctx)
    moat, down = start(ctx, right, relay_tls="may")
    qid = send(moat, "may")
    wait_until(lambda: down.messages, 30, "the message at the downstream server")
    rcpts, content, cipher = down.messages[0]
    assert rcpts == ["rcpt@example.net"], rcpts
    assert cipher is not None, "the downstream session was not TLS"
    assert all(tls for _, tls in down.mails), f"MAIL in clear: {down.mails}"
    line = moat.wait_log(rf"id={qid} .*event=connect.*tls=\"(TLSv1\.[23]) (\S+) verified=(yes|no)\"")
    assert line.group(2) == cipher[0], f"agent says {line.group(2)}, server {cipher}"
    # No CA configured for this test: may encrypts without verifying.
    moat.wait_log(rf"id={qid} .*status=sent")


def test_tls_policy_map_verify_wrong_name_defers(ctx):
    ca, _, wrong = certs(ctx)
    table = ctx.dir / "tls_policy"
    table.write_text("# every destination must be verified\n* verify\n")
    moat, down = start(ctx, wrong, relay_tls="may", relay_tls_policy_maps=str(table),
                       relay_tls_ca_file=ca["cert"])
    qid = send(moat, "verify, wrong name")
    reason = deferred_reason(moat, qid, "server certificate not verified: host name mismatch")
    assert "127.0.0.1" in reason, reason
    assert qid in moat.queue_ids(), "the message left the queue"
    assert not down.mails and not down.messages, f"the server got {down.mails}"


def test_tls_encrypt_without_starttls_defers(ctx):
    moat, down = start(ctx, None, relay_tls="encrypt")
    qid = send(moat, "encrypt, no STARTTLS")
    deferred_reason(moat, qid, "TLS is required, but was not offered by host")
    assert stays_false(lambda: down.mails or down.messages, 2), \
        f"sent in clear: {down.mails}"
    assert qid in moat.queue_ids(), "the message left the queue"


def test_tls_verify_right_name_delivers(ctx):
    ca, right, _ = certs(ctx)
    moat, down = start(ctx, right, relay_tls="verify", relay_tls_ca_file=ca["cert"])
    qid = send(moat, "verify, right name")
    wait_until(lambda: down.messages, 30, "the message at the downstream server")
    assert down.messages[0][2] is not None, "the downstream session was not TLS"
    moat.wait_log(rf"id={qid} .*event=connect.*tls=\"TLSv1\.[23] \S+ verified=yes\"")
    moat.wait_log(rf"id={qid} .*status=sent")
