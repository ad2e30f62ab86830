#!/usr/bin/env python3
"""make_corpus.py - writes the seed corpus of each fuzz target into
fuzz/corpus/<target>/: the handshake and data-phase bytes of the recorded
sessions (../shared/vectors/transcripts/*.json; for handshake1 the
protocol-1 sessions in ../shared/vectors/p1/transcripts), the JSON texts and
noderefs found in them, and hand-made inputs for the corners each target
has. Only files whose names start with "seed-" are written or replaced;
crash reproducers and other inputs added by hand (any other name) are left
alone. Output is deterministic, so running it again changes nothing.

Usage: fuzz/make_corpus.py [TRANSCRIPTS_DIR]   (run from the repository root)
"""
import glob
import json
import os
import sys

MAX_SEED = 8192  # keep seeds small: the fuzzer grows what it needs

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "seed-" + name)
    data = data[:MAX_SEED]
    old = None
    if os.path.exists(path):
        with open(path, "rb") as f:
            old = f.read()
    if old != data:
        with open(path, "wb") as f:
            f.write(data)


def stream(tr, direction, conn=1):
    """The bytes one side sent on one connection, in order."""
    return b"".join(bytes.fromhex(e["hex"]) for e in tr["events"]
                    if e["conn"] == conn and e["dir"] == direction and e.get("hex"))


def after_lines(data, n):
    """What follows the first n LF-terminated lines, or None."""
    pos = 0
    for _ in range(n):
        lf = data.find(b"\n", pos)
        if lf < 0:
            return None
        pos = lf + 1
    return data[pos:]


def handshake_seeds(name, tr):
    hs = tr.get("handshake") or {}
    c2s, s2c = stream(tr, "c2s"), stream(tr, "s2c")
    tls = "tls=1" in hs.get("client_greeting1", "") and "tls=1" in hs.get("server_greeting1", "")
    # our side given as lines: greeting line 1, nonce, secret hex
    sides = [("client", s2c, tr["secret_hex"]),
             ("server", c2s, tr.get("server_secret_hex", tr["secret_hex"]))]
    for side, peer_bytes, secret_hex in sides:
        g1, g2 = hs.get(side + "_greeting1"), hs.get(side + "_greeting2")
        if g1 is None or g2 is None:
            continue
        local = (g1 + "\n" + g2 + "\n" + secret_hex + "\n").encode()
        flags = 0x40 | (0x22 if tls else 0)
        write("handshake", "%s-%s" % (name, side), bytes([flags]) + local + peer_bytes)
        write("handshake", "%s-%s-pieces" % (name, side),
              bytes([flags | 0x80]) + local + peer_bytes)
    # the peer bytes against a default engine (fails at auth, exercises parsing)
    write("handshake", "%s-c2s" % name, b"\x00" + c2s)
    write("handshake", "%s-s2c-pieces" % name, b"\x80" + s2c)


def handshake1_seeds(name, tr):
    """Every connection of a protocol-1 session, as each Perl side saw it:
    our side as three lines (greeting 1, nonce, secret hex or "-"), then
    what the other side sent; and the raw bytes against a default engine."""
    setup = tr["setup"]
    nodes = setup["nodes"]
    for key, conn in sorted(setup["connections"].items(), key=lambda kv: int(kv[0])):
        h = tr["handshakes"].get(key) or {}
        n = int(key)
        c2s, s2c = stream(tr, "c2s", n), stream(tr, "s2c", n)
        server = nodes.get(conn["listener_of"])
        client = next((v for v in nodes.values() if v["node_id"] == conn["client_node_id"]), None)
        for side, node, peer_bytes in (("server", server, c2s), ("client", client, s2c)):
            g1, g2 = h.get(side + "_greeting1"), h.get(side + "_greeting2")
            if g1 is None or g2 is None or node is None:
                continue
            secret = node.get("secret")
            sec = secret.encode("latin-1").hex() if secret is not None else "-"
            local = (g1 + "\n" + g2 + "\n" + sec + "\n").encode()
            flags = 0x40 | (0x22 if "cert" in node else 0)
            write("handshake1", "%s-%d-%s" % (name, n, side), bytes([flags]) + local + peer_bytes)
            write("handshake1", "%s-%d-%s-pieces" % (name, n, side),
                  bytes([flags | 0x80]) + local + peer_bytes)
        if c2s:
            write("handshake1", "%s-%d-c2s" % (name, n), b"\x00" + c2s)


def framer_seeds(name, tr):
    for direction in ("c2s", "s2c"):
        data = after_lines(stream(tr, direction), 3)
        if not data:
            continue
        write("framer", "%s-%s" % (name, direction), b"\x00" + data)
        write("framer", "%s-%s-cut" % (name, direction), b"\x80" + data)
        write("framer", "%s-%s-small" % (name, direction), b"\x9a" + data)


def json_seeds(name, tr):
    # whole data phases too: the links' message path takes them as streams
    for direction in ("c2s", "s2c"):
        data = after_lines(stream(tr, direction), 3)
        if data and "tls=1" not in (tr.get("handshake") or {}).get("client_greeting1", ""):
            write("json", "%s-%s-stream" % (name, direction), data)
    msgs = tr.get("messages") or {}
    seen = set()
    for direction in ("c2s", "s2c"):
        for i, m in enumerate(msgs.get(direction, [])):
            if not isinstance(m, str) or len(m) > 4096 or m in seen:
                continue
            seen.add(m)
            write("json", "%s-%s-%03d" % (name, direction, i), m)


def noderef_seeds(tr, out):
    setup = tr.get("setup", {})
    for k in ("client_noderef", "server_noderef", "server_listens_on"):
        if setup.get(k):
            out.add(setup[k])
    for c in setup.get("connections", {}).values():
        out.update(v for v in c.values() if isinstance(v, str))


HAND_HANDSHAKE = {
    # pair mode: flags, config A, config B, schedule
    "pair-plain": b"\x01\x00\x00",
    "pair-bytewise": b"\x01\x00\x00" + b"\x02\x03" * 200,
    "pair-tls": b"\x01\x01\x01\x20\x21\x00",
    "pair-tls-one-side": b"\x01\x01\x00",
    "pair-cleartext": b"\x01\x02\x02",
    "pair-cleartext-only-to-hmac-only": b"\x01\x02\x08",
    "pair-cleartext-accepted": b"\x01\x04\x18",
    "pair-wrong-secret": b"\x01\x00\x40",
    "pair-crlf": b"\x01\x80\x80\x10\x11",
    "pair-storable-offered": b"\x01\x20\x20",
    "pair-echo": b"\x05\x00\x00",
    "pair-echo-tls": b"\x05\x01\x01",
    "pair-corrupt": b"\x03\x00\x00\x05\x40",
    "pair-corrupt-late": b"\x03\x00\x00\x50\x01",
    # peer mode against the default engine
    "peer-garbage": b"\x00GET / HTTP/1.0\r\n\r\n",
    "peer-version": b"\x00aemp;1;x:1;hmac_md6_64_256;json\nAAAA\n",
    "peer-noauth": b"\x00aemp;0;x:1;foo,bar;json\nAAAA\n",
    "peer-noframing": b"\x00aemp;0;x:1;hmac_md6_64_256;storable\nAAAA\n",
    "peer-kv": b"\x00aemp;0;x:1;hmac_md6_64_256;json;timeout=4.5;tls=1.0;=x;k;a=b=c;;\nAAAA\n",
    "peer-tls": b"\x22aemp;0;x:1;hmac_md6_64_256;json;tls=1\nAAAA\ntls;;json\n[1]",
    "peer-tls-refused": b"\x02aemp;0;x:1;hmac_md6_64_256;json;tls=1\nAAAA\ntls;;json\n",
    "peer-tls-on-plain": b"\x00aemp;0;x:1;hmac_md6_64_256;json\nAAAA\ntls;;json\n",
    "peer-badmethod": b"\x00aemp;0;x:1;hmac_md6_64_256;json\nAAAA\nmd5;00;json\n",
    "peer-cleartext": b"\x00aemp;0;x:1;hmac_md6_64_256;json\nAAAA\ncleartext;"
                      + "fuzzing secret\n".encode().hex().encode() + b";json\n[\"\",\"devnull\"]",
    "peer-cleartext-wrong": b"\x00aemp;0;x:1;hmac_md6_64_256;json\nAAAA\ncleartext;00;json\n",
    "peer-crlf": b"\x00aemp;0;x:1;hmac_md6_64_256;json\r\nAAAA\r\nhmac_md6_64_256;00;json\r\n",
    "peer-nul": b"\x00aemp;0;x\x00:1;hmac_md6_64_256;json\nAA\x00AA\n",
    "peer-control": b"\x00aemp;1\x1b[31m\r;x:1;hmac_md6_64_256;json\n",
    "peer-empty-lines": b"\x00\n\n\n",
    "peer-long-line": b"\x00aemp;0;" + b"x" * 4100 + b"\n",
    # a greeting line of 4095 bytes, 4096 with its LF: the longest allowed
    "peer-line-4095": b"\x00aemp;0;x:1;hmac_md6_64_256;json;pad=" + b"y" * (4095 - 36)
                      + b"\nAAAA\n",
    "peer-pieces": b"\x80aemp;0;x:1;hmac_md6_64_256,cleartext;json,storable\nBBBB\nhmac_md6_64_256;"
                   + b"0" * 64 + b";json\n",
}

HAND_HANDSHAKE1 = {
    # pair mode: flags, config A, config B, schedule
    "pair-plain": b"\x01\x00\x00",
    "pair-bytewise": b"\x01\x00\x00" + b"\x02\x03" * 200,
    "pair-tls": b"\x01\x01\x01\x20\x21\x00",
    "pair-tls-no-secrets": b"\x01\x03\x03",
    "pair-tls-one-side-no-secret": b"\x01\x03\x00",
    "pair-tls-anon": b"\x01\x05\x05",
    "pair-hmac-first-under-tls": b"\x01\x11\x11",
    "pair-no-common": b"\x01\x08\x20",
    "pair-cleartext-offered": b"\x01\x0c\x30",
    "pair-wrong-secret": b"\x01\x00\x40",
    "pair-crlf": b"\x01\x80\x80\x10\x11",
    "pair-same-id": b"\x05\x00\x00",
    "pair-corrupt": b"\x03\x00\x00\x05\x40",
    "pair-corrupt-late": b"\x03\x00\x00\x50\x01",
    # peer mode against the default engine (node id fuzz/me)
    "peer-garbage": b"\x00GET / HTTP/1.0\r\n\r\n",
    "peer-version": b"\x00aemp;0;x;hmac_sha3_512;json\nAAAA\n",
    "peer-self": b"\x00aemp;1;fuzz/me;hmac_sha3_512;json\nAAAA\n",
    "peer-noauth": b"\x00aemp;1;x;foo,bar;json\nAAAA\n",
    "peer-noframing": b"\x00aemp;1;x;hmac_sha3_512;storable,cbor\nAAAA\n",
    "peer-kv": b"\x00aemp;1;x;hmac_sha3_512;cbor,json;mproto=1;tls=1.0;=x;k;a=b=c;;\nAAAA\n",
    "peer-tls": b"\x22aemp;1;x;tls_sha3_512,hmac_sha3_512;json;tls=1\nAAAA\ntls_sha3_512;00;json\n[1]",
    "peer-tls-anon": b"\x2aaemp;1;x;tls_anon;json;tls=1\nAAAA\ntls_anon;;json\n",
    "peer-tls-refused": b"\x02aemp;1;x;tls_sha3_512;json;tls=1\nAAAA\n",
    "peer-no-secret": b"\x06aemp;1;x;tls_sha3_512,hmac_sha3_512;json\nAAAA\n",
    "peer-rcv-method": b"\x00aemp;1;x;hmac_sha3_512;json\nAAAA\nhmac_md6_64_256;ab;json\n",
    "peer-cleartext": b"\x00aemp;1;x;hmac_sha3_512;json\nAAAA\ncleartext;"
                      + "fuzzing secret\n".encode().hex().encode() + b";json\n[\"\",\"time\"]",
    "peer-cleartext-no-secret": b"\x04aemp;1;x;hmac_sha3_512;json\nAAAA\ncleartext;;json\n",
    "peer-bad-framing": b"\x00aemp;1;x;hmac_sha3_512;json\nAAAA\ncleartext;"
                        + "fuzzing secret\n".encode().hex().encode() + b";foo\n",
    "peer-crlf": b"\x00aemp;1;x;hmac_sha3_512;json\r\nAAAA\r\nhmac_sha3_512;00;json\r\n",
    "peer-long-line": b"\x00aemp;1;" + b"x" * 4100 + b"\n",
    "peer-pieces": b"\x80aemp;1;x;hmac_sha3_512,cleartext;json,cbor\nBBBB\nhmac_sha3_512;"
                   + b"0" * 128 + b";json\n",
}

HAND_FRAMER = {
    "texts": b"\x00[1,2][\"a\",{\"b\":[]}]{\"x\":\"]}\\\"\"}",
    "whitespace": b"\x80 \t\r\n[1] \n [2]\r\n\t[3]   ",
    "numbers": b"\x0012 -0 0.5e+10 1E-3 042 -",
    "numbers-bad": b"\x00-x",
    "literals": b"\x00true false null nul",
    "strings": b"\x00\"a\\\"b\" \"\\\\\" \"unterminated",
    "bad-start": b"\x00}",
    "deep": b"\x00" + b"[" * 600 + b"]" * 600,
    "deep-limit": b"\x03[[[]]][[[[]]]]",
    "long": b"\x08[\"" + b"a" * 100 + b"\"]",
    "long-number": b"\x08" + b"1" * 40 + b" ",
    "brackets-mixed": b"\x00[}{]",
    "cut-everywhere": b"\x80[\"\\u00e9\",1.5e3,{\"k\":[true,false,null]}]\"x\"7 ",
}

HAND_JSON = {
    "array": "[\"\",\"devnull\"]",
    "ints": "[0,-0,1,-1,9223372036854775807,-9223372036854775808,18446744073709551615,"
            "18446744073709551616,-9223372036854775809]",
    "reals": "[0.1,1.5e-7,1e21,3.141592653589793,1e400,-1e400,2.0,1E+2,5e-324,"
             "1.7976931348623157e308]",
    "strings": "[\"\\u0000\",\"\\ud83d\\ude00\",\"\\u00e9\",\"\\/\","
               "\"\\b\\f\\n\\r\\t\",\"\\\"\\\\\"]",
    "utf8": "[\"Gr\u00fc\u00dfe\",\"\u4e16\u754c\",\"\U0001F600\",\"\u2028\"]",
    "object": "{\"a\":1,\"a\":2,\"\":[],\"\\u0000k\":{}}",
    "literals": "[true,false,null]",
    "scalar": " 42 ",
    "deep-512": "[" * 512 + "]" * 512,
    "deep-513": "[" * 513 + "]" * 513,
    "lone-surrogate": "[\"\\ud800\"]",
    "bad-escape": "[\"\\x\"]",
    "trailing": "[1] x",
    "long-string": "[\"" + "z" * 3000 + "\"]",
}
HAND_JSON_BYTES = {
    # message streams: plain ids, escaped and non-ASCII ids, kept values
    "stream-ids": b'["a",1,"s"]["",2]["b\\u0041",3] ["\xc3\xa9",4]\n["a",[1],{"k":5}]["a"]',
    "stream-recycle": b'["x",1,2,"three",4]["x",5,6,"seven",8]["x","a","b","c","d","e","f","g","h"]'
                      b'["x",-1,"\\u0000",1e400,18446744073709551615]["x",9]',
    "stream-cut": b'["x",1]["x",[[[',

    "bad-utf8": b"[\"\xc3\x28\"]",
    "overlong": b"[\"\xc0\xaf\"]",
    "surrogate-utf8": b"[\"\xed\xa0\x80\"]",
    "above-max": b"[\"\xf4\x90\x80\x80\"]",
    "control": b"[\"a\x01b\"]",
}

HAND_NODEREF = [
    "127.0.0.1:4040", "[::1]:4040", "127.0.0.1:4040,[::1]:4040", "4040", "", ",",
    "::1", "[::1]", "[::ffff:1.2.3.4]:80", "1.2.3.4:65535", "1.2.3.4:65536",
    "1.2.3.4:-1", "1.2.3.4: 80", "1.2.3.4:+80", "1.2.3.4:00000000000000000080",
    "[::1:80", "[]:1", "1.2.3.4", "1.2.3.4:80,1.2.3.4:80", "slave/worker",
    "slave/worker@127.0.0.1:4040!127.0.0.2:4040", "host:4040", "[fe80::1%eth0]:80",
    "0.0.0.0:0", "::1:80",
]

HAND_ARGS = {
    # first byte: error buffer size - 1; words separated by NUL
    "snd-words": b"\x7ftag\x0042\x00\"42\"\x00[1,2]",
    "snd-array": b"\x7f[1, \"two\", {\"x\": null}]",
    "snd-array-extra": b"\x7f[1]\x00extra",
    "bad-json": b"\x7f{\"a\":}",
    "bad-json-tiny-buffer": b"\x00[",
    "bad-utf8": b"\x7fok\x00\xff\xfe",
    "long-word": b"\x27[" + b"x" * 200,
    "empty": b"\x10",
    "empty-words": b"\x10\x00\x00",
    "newline-word": b"\x7f[\"a\nb\"",
}


# Storable images the vectors do not show: other forms Perl writes and
# the refusals the codec names (tests/test_storable.c has them all).
HAND_STORABLE = {
    "ref-one-zero": "050b020000000204088104088 0",
    "sv-yes-no": "050b02000000040f102223",
    "root-bool": "050b11114a534f4e3a3a50503a3a426f6f6c65616e0881",
    "native-int-double": "050b0200000002060000000001000000070000000000 00f83f",
    "vstring": "050b02000000011d037631320a023132",
    "restricted-hash": "050b1901000000020e1000000001610881000000000162",
    "wasutf8-key": "050b190000000001088102000000036be979",
    "alias-and-shared": "050b02000000030a017800000000010402000000010881040000000003",
    "nul-key": "050b03000000010a02610000000003620062",
    "tied-hash": "050b02000000010c",
    "blessed-hash": "050b020000000104110a466f6f3a3a436c6173730300000000",
    "scalar-ref": "050b0200000001040a0178",
    "ref-ref": "050b020000000104040881",
    "cycle": "050b0200000001040000000000",
    "bad-utf8": "050b02000000011702c328",
    "bless-ix": "050b02000000021411114a534f4e3a3a50503a3a426f6f6c65616e08811412000880",
    "bomb": "050b020000000304020000000208810881040200000002040000000002040000000002"
            "040200000002040000000006040000000006",
}


def storable_seeds(vpath, tdir):
    with open(vpath, encoding="utf-8") as f:
        vec = json.load(f)["vectors"]
    frames = b""
    for v in vec:
        write("storable", "vec-" + v["id"], bytes.fromhex(v["nfreeze_hex"]))
        write("storable", "vec-%s-framed" % v["id"], bytes.fromhex(v["framed_hex"]))
        if len(frames) < 2048:
            frames += bytes.fromhex(v["framed_hex"])
    write("storable", "vec-stream", frames)
    with open(os.path.join(tdir, "13-raw-storable.json"), encoding="utf-8") as f:
        tr = json.load(f)
    write("storable", "13-raw-storable-s2c", after_lines(stream(tr, "s2c"), 3))
    for k, v in HAND_STORABLE.items():
        write("storable", "hand-" + k, bytes.fromhex(v.replace(" ", "")))


def global_seeds(name, tr):
    """The g_* requests a seed got in a p1 session, one record each: a
    byte naming the sender (0 the seed itself, 1-4 the others in order of
    appearance) and the request [TAG, ARGS...] as JSON; then every other
    node goes down (the byte with its top bit set)."""
    nodes = tr["setup"]["nodes"]
    seed = None
    for label in ("seed", "seed2", "seed1"):
        if label in nodes:
            seed = nodes[label]["node_id"]
            break
    if seed is None:
        return
    who = {seed: 0}
    recs = []
    for ev in tr["timeline"]:
        if ev.get("to") != seed:
            continue
        raw = ev.get("msg")
        try:
            msg = raw.get("decoded") if isinstance(raw, dict) else json.loads(raw)
        except (ValueError, TypeError):
            continue
        if not (isinstance(msg, list) and len(msg) >= 2 and msg[0] == ""
                and isinstance(msg[1], str) and msg[1].startswith("g_")):
            continue
        src = ev.get("from") or "?"
        if src not in who:
            if len(who) >= 5:
                continue
            who[src] = len(who)
        recs.append(bytes([who[src]]) + json.dumps(msg[1:], separators=(",", ":")).encode())
    if not recs:
        return
    recs += [bytes([0x80 | i]) for i in sorted(who.values()) if i]
    write("global", name, b"\n".join(recs))


HAND_GLOBAL = {
    "owners": b'\x04["g_mon1","f"]\n\x01["g_upd","f",{"k":1}]\n\x02["g_upd","f",{"k":2}]\n'
              b'\x81\n\x02["g_upd","f",null,["k"]]\n\x00["g_upd","f",{"k":0},["k"]]',
    "mesh": b'\x03["g_global"]\n\x01["g_slave",{"f":{"a":1},"\'l":{"a":["127.0.0.1:1"]}}]\n'
            b'\x03["g_set",{"f":{"b":2},"\'l":{"g":[]}}]\n\x03["g_upd","f",{},["b"]]\n\x83\n'
            b'\x01["g_find","g"]',
    "nul-names": b'\x01["g_upd","f",{"a\\u0000b":1}]\n\x01["g_upd","f\\u0000",{"a":1}]\n'
                 b'\x01["g_slave",{"x\\u0000":{}}]\n\x01["g_upd","f",null,["\\u0000"]]',
    "bad-shapes": b'\x01["g_upd"]\n\x01["g_upd","f",[],5]\n\x01["g_slave",[]]\n\x01["g_set"]\n'
                  b'\x01["g_db_values","f"]\n\x01[1]\n\x01{}\n\x01["g_mon0","never"]',
    "reregister": b'\x01["g_slave",{"f":{"a":1}}]\n\x01["g_slave",{"f":{"b":1}}]\n'
                  b'\x01["g_slave",{}]\n\x01["g_db_family","f","q"]',
}


def main():
    tdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared",
                                                              "vectors", "transcripts")
    files = sorted(glob.glob(os.path.join(tdir, "*.json")))
    if not files:
        sys.exit("no transcripts in %s" % tdir)
    noderefs = set(HAND_NODEREF)
    for path in files:
        name = os.path.basename(path)[:-5]
        with open(path, encoding="utf-8") as f:
            tr = json.load(f)
        handshake_seeds(name, tr)
        framer_seeds(name, tr)
        json_seeds(name, tr)
        noderef_seeds(tr, noderefs)
    for k, v in HAND_HANDSHAKE.items():
        write("handshake", "hand-" + k, v)
    p1dir = os.path.join(tdir, "..", "p1", "transcripts")
    for path in sorted(glob.glob(os.path.join(p1dir, "*.json"))):
        with open(path, encoding="utf-8") as f:
            handshake1_seeds(os.path.basename(path)[:-5], json.load(f))
    for k, v in HAND_HANDSHAKE1.items():
        write("handshake1", "hand-" + k, v)
    for k, v in HAND_FRAMER.items():
        write("framer", "hand-" + k, v)
    for k, v in HAND_JSON.items():
        write("json", "hand-" + k, v)
    for k, v in HAND_JSON_BYTES.items():
        write("json", "hand-" + k, v)
    for i, nr in enumerate(sorted(noderefs)):
        write("noderef", "%03d" % i, nr)
    for k, v in HAND_ARGS.items():
        write("args", "hand-" + k, v)
    storable_seeds(os.path.join(tdir, "..", "storable.json"), tdir)
    for path in sorted(glob.glob(os.path.join(p1dir, "*.json"))):
        with open(path, encoding="utf-8") as f:
            global_seeds(os.path.basename(path)[:-5], json.load(f))
    for k, v in HAND_GLOBAL.items():
        write("global", "hand-" + k, v)


if __name__ == "__main__":
    main()
