"""
test_dns_mx.py: relay delivery routed by DNS (delivery-agent/dns.c)
against the loopback server of dns_server.py: MX preference with a dead
best MX, implicit MX, null MX and NXDOMAIN bounces, and SERVFAIL deferred
until the zone is fixed.  The sandboxed relay agent does the lookups, so
these also prove its seccomp table lets c-ares work.
"""
import re

from dns_server import DnsServer
from moat_harness import LOOPBACK, make_message


def _dns(ctx, zone):
    srv = DnsServer(host=LOOPBACK)
    srv.set_zone(zone)
    srv.start()
    ctx.add_cleanup(srv.stop)
    ctx.note(f"dns_server.py on {LOOPBACK}:{srv.port}")
    return srv


def _moat(ctx, dns, sink):
    # relay_port: MX hosts are reached on the sink's port.
    return ctx.moat(dns_servers=f"{LOOPBACK}:{dns.port}", dns_timeout="3s",
                    relay_port=sink.port)


def test_mx_preference_and_implicit_mx(ctx):
    """Best MX refuses connections: the next one gets the mail; no MX: the A record."""
    sink = ctx.sink()
    dns = _dns(ctx, {
        "company.com": {"MX": [(10, "mx1.company.com"), (20, "mx2.company.com")]},
        # Nothing listens on 127.0.0.2 at the sink's port: connection refused.
        "mx1.company.com": {"A": ["127.0.0.2"]},
        "mx2.company.com": {"A": [LOOPBACK]},
        "plain.test": {"A": [LOOPBACK]},
    })
    moat = _moat(ctx, dns, sink)
    qid = moat.send("bob@example.org", ["alice@company.com"],
                    make_message([("Subject", "by MX"), ("X-Test-Id", "mx-1")], ["hello"]))
    msg = sink.wait_messages(1, timeout=30)[0]
    assert msg.header("X-Test-Id") == ["mx-1"], msg.headers
    moat.wait_log(rf"id={qid}\b.*status=sent", what=f"status=sent for {qid}")
    assert ("company.com", "MX") in dns.queries, dns.queries
    assert ("mx1.company.com", "A") in dns.queries, "the best MX was never looked up"

    qid2 = moat.send("bob@example.org", ["carol@plain.test"],
                     make_message([("Subject", "implicit"), ("X-Test-Id", "mx-2")], ["hi"]))
    sink.wait_messages(2, timeout=30)
    moat.wait_log(rf"id={qid2}\b.*status=sent", what=f"status=sent for {qid2}")
    assert ("plain.test", "MX") in dns.queries and ("plain.test", "A") in dns.queries


def test_null_mx_and_nxdomain_bounce(ctx):
    """MX 0 . bounces with 5.1.10; a domain that does not exist with 5.1.2."""
    sink = ctx.sink()
    dns = _dns(ctx, {"nullmx.test": {"MX": [(0, ".")]}})
    moat = _moat(ctx, dns, sink)
    qid = moat.send("postmaster@localhost", ["dave@nullmx.test"],
                    make_message([("Subject", "null mx")], ["nobody takes this"]))
    moat.wait_log(rf"id={qid}\b.*status=bounced", what=f"status=bounced for {qid}")
    qid2 = moat.send("postmaster@localhost", ["erin@nowhere.test"],
                     make_message([("Subject", "nxdomain")], ["no such domain"]))
    moat.wait_log(rf"id={qid2}\b.*status=bounced", what=f"status=bounced for {qid2}")
    bounces = [p.read_bytes().decode(errors="replace")
               for p in moat.wait_maildir("postmaster", 2, timeout=30)]
    null = [b for b in bounces if "dave@nullmx.test" in b]
    nx = [b for b in bounces if "erin@nowhere.test" in b]
    assert null and re.search(r"5\.1\.10", null[0]), f"null MX bounce:\n{bounces}"
    assert nx and re.search(r"5\.1\.2", nx[0]), f"NXDOMAIN bounce:\n{bounces}"
    assert sink.count() == 0


def test_servfail_deferred_then_delivered(ctx):
    """SERVFAIL defers (4.4.3); once the zone answers, the retry delivers."""
    sink = ctx.sink()
    dns = _dns(ctx, {"flaky.test": "SERVFAIL"})
    moat = _moat(ctx, dns, sink)
    qid = moat.send("bob@example.org", ["frank@flaky.test"],
                    make_message([("Subject", "flaky"), ("X-Test-Id", "mx-3")], ["later"]))
    moat.wait_log(rf"id={qid}\b.*status=deferred", what=f"status=deferred for {qid}")
    assert re.search(rf"id={qid}\b.*status=deferred.*(SERVFAIL|4\.4\.3)", moat.log()), \
        "the deferral does not say why"
    assert sink.count() == 0
    dns.set_zone({"flaky.test": {"MX": [(10, "mx.flaky.test")]},
                  "mx.flaky.test": {"A": [LOOPBACK]}})
    msg = sink.wait_messages(1, timeout=40)[0]
    assert msg.header("X-Test-Id") == ["mx-3"], msg.headers
    moat.wait_log(rf"id={qid}\b.*status=sent", what=f"status=sent for {qid}")
