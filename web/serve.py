"""Serve one exported web folder over HTTP on 127.0.0.1, refusing every path outside it, from a bounded thread pool."""
import concurrent.futures
import http.server
import os
import posixpath
import selectors
import socket
import sys
import threading
import time
import urllib.parse

from absl import logging

from web import export as webexport


BACKLOG = 1024  # connections the kernel queues while every worker is busy (socketserver's default is 5)
THREADS = 32  # worker threads: requests beyond this wait in the queue instead of each taking a new thread
IDLE_TIMEOUT = 10.0  # seconds a connection may wait to send its request, or stall mid-request or mid-reply
DISCONNECTS = (ConnectionError, TimeoutError)  # the client went away or stalled: nothing the server can fix


class FolderHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from self.directory only; '..', encoded or not, and links leading outside get 403."""

    def setup(self):
        self.timeout = self.server.idle_timeout  # set on the socket: an idle or stalled client is dropped after it
        super().setup()

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".json": "application/json",
                      ".mp4": "video/mp4", ".bin": "application/octet-stream"}

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")  # a re-export shows on reload
        super().end_headers()

    def refused(self, path):
        """Why a request path is refused, or None when it stays inside the folder."""
        decoded = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        if "\x00" in decoded or "\\" in decoded:
            return "bad characters"
        if any(part == ".." for part in decoded.split("/")):
            return "'..' in the path"
        root = os.path.realpath(self.directory)
        target = os.path.realpath(os.path.join(root, *[p for p in posixpath.normpath(decoded).split("/") if p]))
        if os.path.commonpath([root, target]) != root:
            return "outside the served folder"
        return None

    def send_head(self):
        why = self.refused(self.path)
        if why:
            self.send_error(403, f"refused: {why}")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(403, "directory listing is off")
        return None

    def log_message(self, fmt, *args):
        logging.debug("%s - %s", self.address_string(), fmt % args)


class PooledHTTPServer(http.server.HTTPServer):
    """An HTTP server with a deep listen backlog whose requests run on a fixed pool of threads (ThreadingHTTPServer
    starts one per connection: 300 idle clients held 303 threads). A connection waits in a selector, holding no
    thread, until its request arrives, and is closed when none comes within idle_timeout; a client that goes
    away mid-reply is one log line, not a traceback."""

    request_queue_size = BACKLOG

    def __init__(self, address, handler, threads=THREADS, idle_timeout=IDLE_TIMEOUT):
        self.idle_timeout = idle_timeout
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="nf-serve")
        self.waiting = selectors.DefaultSelector()  # accepted connections that have not sent a byte yet
        self.open_requests, self.lock, self.closing = set(), threading.Lock(), False
        super().__init__(address, handler)
        self.dispatcher = threading.Thread(target=self.dispatch, name="nf-serve-wait", daemon=True)
        self.dispatcher.start()

    def process_request(self, request, client_address):
        with self.lock:
            self.waiting.register(request, selectors.EVENT_READ,
                                  (client_address, time.monotonic() + self.idle_timeout))

    def dispatch(self):
        """Hand each connection whose request has arrived to the pool; close those idle past their deadline."""
        while not self.closing:
            ready = self.waiting.select(timeout=0.1)
            now = time.monotonic()
            with self.lock:
                if self.closing:
                    return
                for key, _ in ready:
                    self.waiting.unregister(key.fileobj)
                    self.pool.submit(self.process_request_thread, key.fileobj, key.data[0])
                for key in [k for k in self.waiting.get_map().values() if k.data[1] < now]:
                    self.waiting.unregister(key.fileobj)
                    logging.debug("%s:%s sent no request in %g s: closed", *key.data[0][:2], self.idle_timeout)
                    self.shutdown_request(key.fileobj)

    def process_request_thread(self, request, client_address):
        with self.lock:
            self.open_requests.add(request)
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self.lock:
                self.open_requests.discard(request)
            self.shutdown_request(request)

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTS):
            logging.info("%s:%s went away mid-reply (%s)", *client_address[:2], type(error).__name__)
        else:  # a bug in the handler: keep the traceback
            logging.exception("error serving %s:%s", *client_address[:2])

    def server_close(self):
        """Stop listening and end every connection, so no worker keeps the process alive after Ctrl-C."""
        super().server_close()
        with self.lock:
            self.closing = True
            for key in list(self.waiting.get_map().values()):
                self.waiting.unregister(key.fileobj)
                self.shutdown_request(key.fileobj)
            for request in self.open_requests:
                try:
                    request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.dispatcher.join(timeout=1)
        self.waiting.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def make_server(folder, host="127.0.0.1", port=8000, threads=THREADS, idle_timeout=IDLE_TIMEOUT):
    """A pooled HTTP server for folder (port 0 picks a free one); call serve_forever() on it."""
    if not folder:
        raise ValueError("--serve needs a folder: --serve_dir DIR (an exported page) or --export_web DIR")
    if not os.path.isfile(os.path.join(folder, "index.html")):
        raise FileNotFoundError(f"{folder} has no index.html: export the page first with "
                                f"`python main.py --export_web {folder}`")
    if not os.path.isfile(os.path.join(folder, webexport.MANIFEST_FILE)):
        raise FileNotFoundError(f"{folder} has no {webexport.MANIFEST_FILE} (the generator): export it again")
    directory = os.path.realpath(folder)

    def handler(*args, **kwargs):
        return FolderHandler(*args, directory=directory, **kwargs)

    try:
        return PooledHTTPServer((host, port), handler, threads, idle_timeout)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror}; pick another --serve_port") from e


def start_background(folder, **options):
    """Serve folder on a free 127.0.0.1 port from a daemon thread (tests, screenshots, benchmarks): (server, url).
    options: make_server's threads and idle_timeout."""
    server = make_server(folder, port=0, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def serve(folder, host="127.0.0.1", port=8000):
    """Serve folder until Ctrl-C."""
    server = make_server(folder, host, port)
    h, p = server.server_address[:2]
    if host not in ("127.0.0.1", "localhost", "::1"):
        logging.warning("serving on %s: other machines on the network can open the page", host)
    print(f"serving {folder} at http://{'localhost' if h == '127.0.0.1' else h}:{p}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
