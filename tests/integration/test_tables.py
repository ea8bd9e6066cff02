"""
test_tables.py: lookup tables as an operator meets them through moatd -n:
tables are read with moat.conf, their errors are configuration errors
named by the table's own file and line, and a configuration file can never
pose as the configuration bundle that carries tables to the children.
"""
import re
import subprocess

from moat_harness import MOATD

TRANSPORT = """\
# an edge MX: its domains go to the internal mail store
example.com         lmtp:[10.0.0.5]:24
.example.com        lmtp:[10.0.0.5]
partner.example
    mx
*                   smtp:[smarthost.example.net]:587
"""

POLICY = """\
example.com     verify
.example.com    encrypt
"""

BAD_TRANSPORT = """\
example.com         lmtp:[10.0.0.5]:24
example.net         smtp:[300.1.1.1]:25
Example.COM         mx
bad_key.example     mx
lab.example         lmtp:unix:relative
# fine
ok.example          smtp:ok.example:2525
port.example        smtp:[192.0.2.1]:65536
"""
BAD_TRANSPORT_LINES = {2, 3, 4, 5, 8}


def _check(path):
    r = subprocess.run([str(MOATD), "-n", "-f", str(path)], capture_output=True, text=True,
                       timeout=15)
    return r.returncode, r.stdout, r.stderr


def test_tables_load(ctx):
    """Good tables: moatd -n exits 0 and prints the settings that name them."""
    transport = ctx.dir / "transport"
    policy = ctx.dir / "tls_policy"
    transport.write_text(TRANSPORT)
    policy.write_text(POLICY)
    conf = ctx.dir / "moat.conf"
    conf.write_text(f"transport_maps = {transport}\nrelay_tls_policy_maps = {policy}\n"
                    "relay_host = smarthost.example.net:587\n")
    rc, out, err = _check(conf)
    assert rc == 0, f"moatd -n with good tables: exit {rc}\n{out}{err}"
    assert re.search(rf"^transport_maps = {re.escape(str(transport))}$", out, re.M), out
    assert re.search(r"^relay_host = smarthost\.example\.net:587$", out, re.M), out


def test_table_errors(ctx):
    """Each bad entry is one `table:line: message`; a missing table names moat.conf's line."""
    transport = ctx.dir / "transport"
    transport.write_text(BAD_TRANSPORT)
    policy = ctx.dir / "tls_policy"
    policy.write_text("example.com verify\nexample.net dane\n")
    conf = ctx.dir / "moat.conf"
    conf.write_text(f"transport_maps = {transport}\nrelay_tls_policy_maps = {policy}\n")
    rc, out, err = _check(conf)
    assert rc == 1, f"moatd -n with bad tables: exit {rc}\n{out}{err}"
    lines = {int(m.group(1))
             for m in re.finditer(rf"^{re.escape(str(transport))}:(\d+): \S", err, re.M)}
    assert lines == BAD_TRANSPORT_LINES, \
        f"transport error lines {sorted(lines)}, want {sorted(BAD_TRANSPORT_LINES)}:\n{err}"
    assert f'{transport}:3: duplicate key "example.com" (first on line 1)' in err, err
    assert f'{transport}:2: example.net: bad IP address "300.1.1.1"' in err, err
    assert f'{policy}:2: example.net: "dane" is not one of: none may encrypt verify' in err, err

    conf.write_text("delivery_agents = 2\ntransport_maps = /nonexistent/transport\n")
    rc, out, err = _check(conf)
    assert rc == 1 and f"{conf}:2: transport_maps: /nonexistent/transport: cannot open" in err, \
        f"missing table: exit {rc}\n{err}"


def test_file_cannot_be_a_bundle(ctx):
    """A file holding the bundle format is refused (the bundle starts with NUL)."""
    transport = ctx.dir / "transport"
    transport.write_text("* smtp:[192.0.2.1]:25\n")
    text = f"transport_maps = {transport}\n"
    table = transport.read_text()
    fake = (b"\0moat-bundle 1\n" + f"conf {len(text)}\n{text}\n".encode()
            + f"table transport_maps {len(table)}\n{table}\nend\n".encode())
    conf = ctx.dir / "moat.conf"
    conf.write_bytes(fake)
    rc, out, err = _check(conf)
    assert rc == 1 and f"{conf}:1: NUL byte in line" in err, \
        f"a bundle as moat.conf: exit {rc}\n{out}{err}"
