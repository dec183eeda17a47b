"""Serve one exported web folder over HTTP on 127.0.0.1, refusing every path outside it."""
import http.server
import os
import posixpath
import threading
import urllib.parse

from absl import logging

from web import export as webexport


class FolderHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from self.directory only; '..', encoded or not, and links leading outside get 403."""

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


def make_server(folder, host="127.0.0.1", port=8000):
    """A threading HTTP server for folder (port 0 picks a free one); call serve_forever() on it."""
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
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror}; pick another --serve_port") from e


def start_background(folder):
    """Serve folder on a free 127.0.0.1 port from a daemon thread (tests, screenshots, benchmarks): (server, url)."""
    server = make_server(folder, port=0)
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
