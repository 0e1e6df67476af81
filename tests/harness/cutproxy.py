#!/usr/bin/env python3
"""tests/harness/cutproxy.py: a TCP proxy on 127.0.0.1 that forwards to a server and, once
it has passed --cut-after bytes from the server to the client, closes every connection and
stops listening, so that reconnects are refused: a server that dies in the middle of an
answer, at a byte count the test chooses, without any timing.

    cutproxy.py --target-port P --cut-after N

Prints "READY <port>" on stdout when it listens. Runs until killed or until --linger
seconds after the cut.
"""
import argparse
import selectors
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--cut-after", type=int, required=True)
    ap.add_argument("--linger", type=float, default=600.0)
    a = ap.parse_args()

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, ("listen", None))
    print("READY %d" % lsock.getsockname()[1], flush=True)
    passed = 0
    pairs = []
    cut_at = None
    while True:
        if cut_at is not None and time.time() - cut_at > a.linger:
            return 0
        for key, _ in sel.select(timeout=0.5):
            role, peer = key.data
            if role == "listen":
                c, _ = lsock.accept()
                s = socket.create_connection(("127.0.0.1", a.target_port))
                c.setblocking(False)
                s.setblocking(False)
                sel.register(c, selectors.EVENT_READ, ("client", s))
                sel.register(s, selectors.EVENT_READ, ("server", c))
                pairs.append((c, s))
                continue
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:
                for x in (key.fileobj, peer):
                    try:
                        sel.unregister(x)
                    except (KeyError, ValueError):
                        pass
                    x.close()
                continue
            if role == "server":
                room = a.cut_after - passed
                if len(data) >= room:
                    peer.setblocking(True)
                    peer.sendall(data[:max(room, 0)])
                    # the cut: every connection closed, no new one accepted
                    for c, s in pairs:
                        for x in (c, s):
                            try:
                                sel.unregister(x)
                            except (KeyError, ValueError):
                                pass
                            x.close()
                    sel.unregister(lsock)
                    lsock.close()
                    cut_at = time.time()
                    print("CUT %d" % a.cut_after, flush=True)
                    break
                passed += len(data)
            peer.setblocking(True)
            peer.sendall(data)
            peer.setblocking(False)


if __name__ == "__main__":
    sys.exit(main())
