#!/usr/bin/env python3
"""
dns_server.py: a small authoritative DNS server on loopback for tests.

    srv = DnsServer(host="127.0.0.1")   # a free port, the same for UDP and TCP
    srv.set_zone({
        "example.test": {"MX": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
        "mx1.example.test": {"A": ["127.0.0.5"], "AAAA": ["::1"]},
        "alias.test": {"CNAME": "mx1.example.test"},
        "nullmx.test": {"MX": [(0, ".")]},
        "big.test": {"MX": [...], "TRUNCATE_UDP": True},  # UDP: TC bit, no answer
        "broken.test": "SERVFAIL",      # or "REFUSED", "NXDOMAIN", "TIMEOUT" (no reply)
    })
    srv.start()
    ... moat config: dns_servers = 127.0.0.1:<srv.port> ...
    srv.set_zone({...})                 # at run time, thread-safe: "fix" a zone
    srv.queries                          # [(name, type)] asked so far, e.g. ("example.test", "MX")
    srv.stop()

Answers: a listed name gives its records of the asked type (a CNAME is
followed within the zone), or NOERROR with no data when it has none of
that type; a name that is not listed but has listed names below it (an
empty non-terminal) gives NOERROR/no data; any other name is NXDOMAIN.
Replies are authoritative (AA), echo the question and the id.  Over UDP a
reply that does not fit in 512 bytes is cut to the header with TC set, so
the client retries over TCP, as a real server does.

`python3 tests/integration/dns_server.py` runs a self-test: it serves a
zone and queries it with dnslib's client (and dig when present).
"""
import socket
import socketserver
import struct
import sys
import threading

try:
    import dnslib
except ImportError:      # a python3 outside Debian's (pyenv): use Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import dnslib

from dnslib import A, AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, DNSRecord, DNSLabel

UDP_MAX = 512
TTL = 300
MODES = ("SERVFAIL", "REFUSED", "NXDOMAIN", "TIMEOUT")
RDATA = {"A": A, "AAAA": AAAA, "TXT": TXT}


def _norm(name):
    return str(name).lower().rstrip(".")


class DnsServer:
    """Authoritative answers from a dict zone, over UDP and TCP on one port."""

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self._lock = threading.Lock()
        self._zone = {}
        self.queries = []
        self._udp = self._tcp = None
        self._threads = []
        self.port = self._bind(port)

    # ---- zone ----

    def set_zone(self, zone):
        """Replace the zone (thread-safe); see the module doc for its shape."""
        checked = {}
        for name, entry in zone.items():
            if isinstance(entry, str):
                if entry not in MODES:
                    raise ValueError(f"{name}: unknown mode {entry!r}")
            elif not isinstance(entry, dict):
                raise ValueError(f"{name}: entry must be a dict or one of {MODES}")
            checked[_norm(name)] = entry
        with self._lock:
            self._zone = checked

    def _records(self, zone, name, qtype, depth=0):
        """(rcode, [RR]) for name/qtype, following CNAMEs within the zone."""
        entry = zone.get(name)
        if entry is None:
            below = any(n.endswith("." + name) for n in zone)
            return (RCODE.NOERROR if below else RCODE.NXDOMAIN), []
        if isinstance(entry, str):
            return entry, []
        if "CNAME" in entry and qtype != "CNAME" and depth < 8:
            target = _norm(entry["CNAME"])
            rr = RR(name, QTYPE.CNAME, rdata=CNAME(target + "."), ttl=TTL)
            rcode, rest = self._records(zone, target, qtype, depth + 1)
            return (rcode if isinstance(rcode, int) else RCODE.SERVFAIL), [rr] + rest
        rrs = []
        for value in entry.get(qtype, []):
            if qtype == "MX":
                pref, exchange = value
                exchange = "." if exchange in ("", ".") else _norm(exchange) + "."
                rdata = MX(exchange, pref)
            elif qtype == "CNAME":
                rdata = CNAME(_norm(value) + ".")
            elif qtype in RDATA:
                rdata = RDATA[qtype](value)
            else:
                continue
            rrs.append(RR(name, getattr(QTYPE, qtype), rdata=rdata, ttl=TTL))
        return RCODE.NOERROR, rrs

    def answer(self, data, udp):
        """The reply bytes for a query packet, or None for no reply."""
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        if not req.questions:
            return None
        q = req.questions[0]
        name, qtype = _norm(q.qname), QTYPE.get(q.qtype)
        with self._lock:
            zone = self._zone
            self.queries.append((name, qtype))
        reply = req.reply(ra=1, aa=1)
        rcode, rrs = self._records(zone, name, qtype)
        if rcode == "TIMEOUT":
            return None
        if isinstance(rcode, str):
            rcode = getattr(RCODE, rcode)
        reply.header.rcode = rcode
        for rr in rrs:
            reply.add_answer(rr)
        entry = zone.get(name)
        packed = reply.pack()
        truncate = isinstance(entry, dict) and entry.get("TRUNCATE_UDP")
        if udp and (truncate or len(packed) > UDP_MAX):
            cut = req.reply(ra=1, aa=1)
            cut.header.tc = 1
            packed = cut.pack()
        return packed

    # ---- sockets ----

    def _bind(self, port):
        """Bind UDP and TCP on one port; with port 0 find one free for both."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = self

        class Udp(socketserver.ThreadingUDPServer):
            address_family = family
            daemon_threads = True

        class Tcp(socketserver.ThreadingTCPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        class UdpHandler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                out = server.answer(data, udp=True)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class TcpHandler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                try:
                    while True:
                        head = self._read(2)
                        if head is None:
                            return
                        data = self._read(struct.unpack("!H", head)[0])
                        if data is None:
                            return
                        out = server.answer(data, udp=False)
                        if out is not None:
                            self.request.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    return

            def _read(self, n):
                buf = b""
                while len(buf) < n:
                    chunk = self.request.recv(n - len(buf))
                    if not chunk:
                        return None
                    buf += chunk
                return buf

        for _ in range(50):
            udp = Udp((self.host, port), UdpHandler)
            chosen = udp.server_address[1]
            try:
                tcp = Tcp((self.host, chosen), TcpHandler)
            except OSError:
                udp.server_close()
                if port:
                    raise
                continue
            self._udp, self._tcp = udp, tcp
            return chosen
        raise OSError("no port free for both UDP and TCP")

    def start(self):
        for srv in (self._udp, self._tcp):
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        for srv in (self._udp, self._tcp):
            if srv is not None:
                if self._threads:
                    srv.shutdown()
                srv.server_close()
        for t in self._threads:
            t.join(timeout=2)
        self._threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _ask(srv, name, qtype, tcp=False):
    q = DNSRecord.question(name, qtype)
    return DNSRecord.parse(q.send(srv.host, srv.port, tcp=tcp, timeout=3))


def _selftest():
    """Serve a zone and check every kind of answer; exit 1 on a mismatch."""
    import shutil
    import subprocess

    failed = count = 0

    def check(cond, label):
        nonlocal failed, count
        count += 1
        print(("ok - " if cond else "not ok - ") + label)
        failed += not cond

    big = [(i, f"mx{i}-with-a-long-label-to-fill-the-packet.big.test") for i in range(20)]
    with DnsServer() as srv:
        srv.set_zone({
            "example.test": {"MX": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
            "mx1.example.test": {"A": ["127.0.0.5"], "AAAA": ["::1"]},
            "alias.test": {"CNAME": "mx1.example.test"},
            "v6only.test": {"AAAA": ["::1"]},
            "nullmx.test": {"MX": [(0, ".")]},
            "broken.test": "SERVFAIL",
            "silent.test": "TIMEOUT",
            "big.test": {"MX": big},
        })
        r = _ask(srv, "example.test", "MX")
        check(r.header.rcode == RCODE.NOERROR and r.header.aa and
              sorted((x.rdata.preference, str(x.rdata.label)) for x in r.rr) ==
              [(10, "mx1.example.test."), (20, "mx2.example.test.")], "MX records")
        r = _ask(srv, "mx1.example.test", "A")
        check([str(x.rdata) for x in r.rr] == ["127.0.0.5"], "A record")
        r = _ask(srv, "mx1.example.test", "TXT")
        check(r.header.rcode == RCODE.NOERROR and not r.rr, "no data: NOERROR, empty")
        r = _ask(srv, "alias.test", "A")
        check([QTYPE.get(x.rtype) for x in r.rr] == ["CNAME", "A"], "CNAME followed")
        r = _ask(srv, "nullmx.test", "MX")
        check(len(r.rr) == 1 and r.rr[0].rdata.preference == 0 and
              str(r.rr[0].rdata.label) == ".", "null MX")
        r = _ask(srv, "nowhere.test", "A")
        check(r.header.rcode == RCODE.NXDOMAIN, "unlisted name: NXDOMAIN")
        r = _ask(srv, "test", "A")
        check(r.header.rcode == RCODE.NOERROR and not r.rr, "empty non-terminal: no data")
        r = _ask(srv, "broken.test", "MX")
        check(r.header.rcode == RCODE.SERVFAIL, "SERVFAIL")
        try:
            _ask(srv, "silent.test", "MX")
            check(False, "TIMEOUT gives no reply")
        except socket.timeout:
            check(True, "TIMEOUT gives no reply")
        r = _ask(srv, "big.test", "MX")
        check(r.header.tc == 1 and not r.rr, "big reply over UDP: TC")
        r = _ask(srv, "big.test", "MX", tcp=True)
        check(len(r.rr) == 20, "big reply over TCP: whole")
        srv.set_zone({"broken.test": {"MX": [(5, "mx.broken.test")]}})
        r = _ask(srv, "broken.test", "MX")
        check(r.header.rcode == RCODE.NOERROR and len(r.rr) == 1, "set_zone at run time")
        check(("example.test", "MX") in srv.queries, "queries recorded")
        if shutil.which("dig"):
            out = subprocess.run(["dig", "+short", "+tries=1", "+time=2", "-p",
                                  str(srv.port), "@" + srv.host, "broken.test", "MX"],
                                 capture_output=True, text=True, timeout=10).stdout
            check(out.strip() == "5 mx.broken.test.", "dig: " + out.strip())
    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_selftest())
