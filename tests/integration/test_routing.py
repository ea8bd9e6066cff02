"""
test_routing.py: the relay agent routes by DNS like Postfix's smtp client,
against a real DNS server (dns_server.py, over UDP/TCP on loopback) and
real SMTP servers (aiosmtpd) on 127.0.0.x, all on one relay_port:

  two MX hosts where the preferred one refuses connections, equal
  preferences, implicit MX, null MX, SERVFAIL then fixed, NXDOMAIN, an
  AAAA-only host on ::1, a transport_maps entry (no MX lookup), and an MX
  pointing at moat's own listening address (a mail loop).

Downstream is a helper other tests of the agent use too (test_lmtp.py,
test_reuse.py): an aiosmtpd SMTP or LMTP server that keeps every message,
can refuse chosen recipients (at RCPT, or for LMTP after DATA) and counts
simultaneous connections.
"""
import email
import email.policy
import os
import re
import socket
import sys
import threading
import time

from dns_server import DnsServer
from moat_harness import make_message, stays_false, wait_until

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP
except ImportError:      # a python3 outside Debian's (pyenv): use Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP


def free_port_on(host):
    """A TCP port nobody listens on at host (and at 127.0.0.1 and ::1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError(f"no free port on {host}")


class _Handler:
    """Keeps messages; refuses recipients listed in refuse with 550."""

    def __init__(self, owner):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.owner.refuse:
            return "550 5.1.1 <%s>: user unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        # LMTP: one reply per recipient; those in refuse_data get 552.
        ok = [r for r in envelope.rcpt_tos if r.lower() not in self.owner.refuse_data]
        with self.owner.lock:
            self.owner.messages.append((envelope.mail_from, ok,
                                        envelope.original_content or envelope.content))
        if self.owner.lmtp:
            return "\r\n".join(("250 2.0.0 <%s> delivered" if r in ok else
                                 "552 5.2.2 <%s> mailbox full") % r
                                for r in envelope.rcpt_tos)
        return "250 2.0.0 Ok: queued"


class _Controller(Controller):
    def __init__(self, owner, handler, **kw):
        self.owner = owner
        super().__init__(handler, **kw)

    def factory(self):
        owner = self.owner
        base = LMTP if owner.lmtp else SMTP

        class Counting(base):
            def connection_made(self, transport):
                with owner.lock:
                    owner.conns += 1
                    owner.total += 1
                    owner.max_conns = max(owner.max_conns, owner.conns)
                super().connection_made(transport)

            def connection_lost(self, exc):
                with owner.lock:
                    owner.conns -= 1
                super().connection_lost(exc)

        return Counting(self.handler, decode_data=False, data_size_limit=0)


class Downstream:
    """An SMTP (or LMTP) server on host:port for one test."""

    def __init__(self, ctx, host, port, lmtp=False, refuse=(), refuse_data=()):
        self.host, self.port, self.lmtp = host, port, lmtp
        self.refuse = {r.lower() for r in refuse}
        self.refuse_data = {r.lower() for r in refuse_data}
        self.lock = threading.Lock()
        self.messages = []
        self.conns = self.total = self.max_conns = 0
        self.ctl = _Controller(self, _Handler(self), hostname=host, port=port)
        self.ctl.start()
        # Controller.start() connects once to check the server is up.
        with self.lock:
            self.total = 0
            self.max_conns = self.conns
        ctx.add_cleanup(self.stop)

    def stop(self):
        if self.ctl is not None:
            self.ctl.stop()
            self.ctl = None

    def count(self):
        with self.lock:
            return len(self.messages)

    def wait(self, n, timeout=30):
        return wait_until(lambda: self.count() >= n and self.messages, timeout,
                          f"{n} message(s) at {self.host}:{self.port} (have {self.count()})")

    def subjects(self):
        with self.lock:
            msgs = list(self.messages)
        out = []
        for _, _, content in msgs:
            m = email.message_from_bytes(content, policy=email.policy.default)
            out.append(m["Subject"])
        return out


def start_dns(ctx, zone):
    srv = DnsServer(host="127.0.0.1")
    srv.set_zone(zone)
    srv.start()
    ctx.add_cleanup(srv.stop)
    return srv


def routed_moat(ctx, dns, relay_port, **settings):
    """A moat that routes by MX through dns, to servers on relay_port."""
    conf = dict(dns_servers=f"127.0.0.1:{dns.port}", relay_port=relay_port,
                relay_host=None, relay_tls="none", dns_timeout="3s")
    conf.update(settings)
    return ctx.moat(**conf)


def message(subject):
    return make_message([("Subject", subject), ("X-Test-Id", subject)], [f"body of {subject}"])


def bounce_for(moat, n=1, timeout=30):
    """The n-th bounce delivered to postmaster@localhost, parsed."""
    files = moat.wait_maildir("postmaster", n, timeout=timeout)
    return email.message_from_bytes(files[n - 1].read_bytes(), policy=email.policy.default)


def dsn_fields(bounce):
    """Per-recipient fields of the message/delivery-status part, as text."""
    for part in bounce.walk():
        if part.get_content_type() == "message/delivery-status":
            return "\n".join(str(p) for p in part.get_payload())
    raise AssertionError(f"no message/delivery-status part in the bounce:\n{bounce}")


def test_mx_preference_and_fallback(ctx):
    """MX 10 refuses connections, MX 20 takes the mail; equal preferences share."""
    port = free_port_on("127.0.0.6")
    mx2 = Downstream(ctx, "127.0.0.6", port)
    eq_a = Downstream(ctx, "127.0.0.7", port)
    eq_b = Downstream(ctx, "127.0.0.8", port)
    dns = start_dns(ctx, {
        "example.test": {"MX": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
        "mx1.example.test": {"A": ["127.0.0.5"]},
        "mx2.example.test": {"A": ["127.0.0.6"]},
        "equal.test": {"MX": [(10, "a.equal.test"), (10, "b.equal.test")]},
        "a.equal.test": {"A": ["127.0.0.7"]},
        "b.equal.test": {"A": ["127.0.0.8"]},
    })
    # No connection reuse here: every message makes its own MX choice.
    moat = routed_moat(ctx, dns, port, relay_connection_reuse_limit=1)
    qid = moat.send("sender@company.org", ["bob@example.test"], message("fallback"))
    msg = mx2.wait(1)[0]
    assert msg[1] == ["bob@example.test"], msg
    moat.wait_log(rf"id={qid} relay=mx1\.example\.test\[127\.0\.0\.5\]:{port} event=skip "
                  rf"\(connect to mx1\.example\.test\[127\.0\.0\.5\]:{port}: Connection refused\)",
                  what="the refused MX 10 logged and passed over")
    moat.wait_log(rf"id={qid} to=<bob@example\.test> relay=mx2\.example\.test"
                  rf"\[127\.0\.0\.6\]:{port} dsn=2\.0\.0 status=sent",
                  what="delivery through MX 20 logged")
    assert ("example.test", "MX") in dns.queries, dns.queries

    for i in range(16):
        moat.send("sender@company.org", [f"user{i}@equal.test"], message(f"equal {i}"))
    wait_until(lambda: eq_a.count() + eq_b.count() >= 16, 60,
               "16 messages at the two equal-preference MX hosts")
    assert eq_a.count() >= 1 and eq_b.count() >= 1, \
        f"equal preferences not shared: a={eq_a.count()} b={eq_b.count()}"
    ctx.note(f"equal preferences: {eq_a.count()} and {eq_b.count()} of 16")


test_mx_preference_and_fallback.timeout = 120


def test_implicit_mx_and_ipv6(ctx):
    """No MX: the domain's A record; an AAAA-only MX host on ::1."""
    port = free_port_on("::1")
    implicit = Downstream(ctx, "127.0.0.9", port)
    v6 = Downstream(ctx, "::1", port)
    dns = start_dns(ctx, {
        "implicit.test": {"A": ["127.0.0.9"]},
        "v6.test": {"MX": [(10, "mx.v6.test")]},
        "mx.v6.test": {"AAAA": ["::1"]},
    })
    moat = routed_moat(ctx, dns, port)

    qid = moat.send("sender@company.org", ["ann@implicit.test"], message("implicit"))
    assert implicit.wait(1)[0][1] == ["ann@implicit.test"]
    assert ("implicit.test", "MX") in dns.queries and ("implicit.test", "A") in dns.queries, \
        dns.queries
    moat.wait_log(rf"id={qid} to=<ann@implicit\.test> relay=implicit\.test\[127\.0\.0\.9\]:"
                  rf"{port} dsn=2\.0\.0 status=sent", what="delivery by implicit MX logged")

    qid = moat.send("sender@company.org", ["vic@v6.test"], message("ipv6"))
    assert v6.wait(1)[0][1] == ["vic@v6.test"]
    moat.wait_log(rf"id={qid} to=<vic@v6\.test> relay=mx\.v6\.test\[::1\]:{port} "
                  rf"dsn=2\.0\.0 status=sent", what="delivery to [::1] logged")


def test_transport_maps_route(ctx):
    """A transport_maps entry smtp:[address]:port: no MX lookup, that server."""
    tport = free_port_on("127.0.0.10")
    special = Downstream(ctx, "127.0.0.10", tport)
    dns = start_dns(ctx, {"special.test": {"MX": [(10, "mx1.example.test")]},
                          "mx1.example.test": {"A": ["127.0.0.5"]}})
    tmap = ctx.dir / "transport"
    tmap.write_text(f"special.test smtp:[127.0.0.10]:{tport}\n")
    os.chmod(ctx.dir, 0o755)
    os.chmod(tmap, 0o644)
    moat = routed_moat(ctx, dns, free_port_on("127.0.0.5"), transport_maps=str(tmap))
    qid = moat.send("sender@company.org", ["sam@special.test"], message("transport"))
    assert special.wait(1)[0][1] == ["sam@special.test"]
    moat.wait_log(rf"id={qid} to=<sam@special\.test> relay=127\.0\.0\.10\[127\.0\.0\.10\]:"
                  rf"{tport} dsn=2\.0\.0 status=sent", what="delivery by transport_maps")
    assert ("special.test", "MX") not in dns.queries, \
        f"transport_maps route [host]:port still looked up MX: {dns.queries}"


def test_null_mx_and_nxdomain_bounce(ctx):
    """Null MX bounces at once with 5.1.10; NXDOMAIN bounces with 5.1.2."""
    port = free_port_on("127.0.0.6")
    dns = start_dns(ctx, {"nullmx.test": {"MX": [(0, ".")]},
                          "other.test": {"A": ["127.0.0.6"]}})
    moat = routed_moat(ctx, dns, port)

    qid = moat.send("postmaster@localhost", ["nobody@nullmx.test"], message("nullmx"))
    moat.wait_log(rf"id={qid} to=<nobody@nullmx\.test> relay=none dsn=5\.1\.10 "
                  rf"status=bounced \(556 5\.1\.10 Domain nullmx\.test does not accept mail "
                  rf"\(null MX\)\)", what="the null MX bounce logged")
    bounce = bounce_for(moat, 1)
    fields = dsn_fields(bounce)
    assert "nobody@nullmx.test" in fields and "5.1.10" in fields, fields
    assert "does not accept mail" in str(bounce), str(bounce)[:3000]
    assert stays_false(lambda: f"event=skip" in moat.log(), 0.5), "null MX: a connection was tried"

    qid = moat.send("postmaster@localhost", ["who@nosuch.test"], message("nxdomain"))
    moat.wait_log(rf"id={qid} to=<who@nosuch\.test> relay=none dsn=5\.1\.2 status=bounced",
                  what="the NXDOMAIN bounce logged")
    fields = dsn_fields(bounce_for(moat, 2))
    assert "who@nosuch.test" in fields and "5.1.2" in fields, fields


def test_servfail_deferred_then_delivered(ctx):
    """SERVFAIL defers (4.4.3); once the zone is fixed the retry delivers."""
    port = free_port_on("127.0.0.6")
    mx = Downstream(ctx, "127.0.0.6", port)
    dns = start_dns(ctx, {"broken.test": "SERVFAIL"})
    # Only `moatctl retry` makes it due again: with the harness's 1 s
    # back-off it could be delivered first and leave retry nothing to find.
    moat = routed_moat(ctx, dns, port, minimal_backoff_time="300s",
                       maximal_backoff_time="600s")
    qid = moat.send("sender@company.org", ["bob@broken.test"], message("servfail"))
    moat.wait_log(rf"id={qid} to=<bob@broken\.test> relay=none dsn=4\.4\.3 status=deferred",
                  what="a deferral for the SERVFAIL")
    assert mx.count() == 0
    assert qid in moat.queue_ids()
    dns.set_zone({"broken.test": {"MX": [(10, "mx.broken.test")]},
                  "mx.broken.test": {"A": ["127.0.0.6"]}})
    r = moat.moatctl("retry", qid)
    assert r.returncode == 0, f"moatctl retry {qid}: {r.returncode} {r.stdout}{r.stderr}"
    assert mx.wait(1, timeout=40)[0][1] == ["bob@broken.test"]
    moat.wait_log(rf"id={qid} to=<bob@broken\.test> relay=mx\.broken\.test\[127\.0\.0\.6\]:"
                  rf"{port} dsn=2\.0\.0 status=sent", what="delivery after the fix")
    wait_until(lambda: qid not in moat.queue_ids(), 20, f"{qid} to leave the queue")


def test_mx_loop_bounces(ctx):
    """An MX that is moat's own listening address and port: 5.4.6 bounce."""
    dns = DnsServer(host="127.0.0.1")
    dns.start()
    ctx.add_cleanup(dns.stop)
    moat = ctx.moat(start=False, dns_servers=f"127.0.0.1:{dns.port}", relay_host=None,
                    relay_tls="none")
    # relay_port = moat's own port, known only once the Moat exists.
    moat.conf_path.write_text(moat.conf_path.read_text() + f"relay_port = {moat.port}\n")
    dns.set_zone({"loop.test": {"MX": [(10, "mx.loop.test")]},
                  "mx.loop.test": {"A": ["127.0.0.1"]}})
    moat.start()
    qid = moat.send("postmaster@localhost", ["x@loop.test"], message("loop"))
    moat.wait_log(rf"id={qid} relay=mx\.loop\.test\[127\.0\.0\.1\]:{moat.port} event=skip "
                  rf"\(mail loops back to myself\)", what="the looping MX passed over")
    moat.wait_log(rf"id={qid} to=<x@loop\.test> .*dsn=5\.4\.6 status=bounced \(554 5\.4\.6 "
                  rf"mail for loop\.test loops back to myself\)", what="the loop bounce")
    fields = dsn_fields(bounce_for(moat, 1))
    assert "x@loop.test" in fields and "5.4.6" in fields, fields
    # Nothing was sent to moat itself: one session only (the test's own).
    assert len(re.findall(r"smtpd-session\[\d+\]: connect ", moat.log())) == 1, \
        "moat connected to itself"
