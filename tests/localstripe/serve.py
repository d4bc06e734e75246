"""localstripe for tests: bound to 127.0.0.1 on the port given (0 picks a free one), no state
file, and the address printed once it listens: `localstripe listening on http://127.0.0.1:PORT`.

localstripe itself listens on every interface and keeps its state in /tmp/localstripe.pickle,
shared by every instance; tests need neither.
"""
import socket
import sys

from aiohttp import web

import localstripe.resources as resources
from localstripe.server import app

resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # Listening before the address is printed: a client may connect at once (aiohttp queues it).
    sock.listen(128)
    print(f"localstripe listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
