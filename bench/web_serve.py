"""Benchmark the static server (python main.py --serve): requests/s and failures for N parallel clients, and what
idle clients cost.

    python bench/web_serve.py [--clients 1,20,200] [--requests 2000] [--idle 300]

The server runs in its own process (as `--serve` does) on 127.0.0.1 over a scratch folder with a 5 KB index.html
and a 1 MB file; the clients are Python threads in this process, one HTTP/1.0 connection per request (5 s timeout).
idle: that many clients connect and send nothing; the server's thread count is read from /proc while they wait,
one GET is timed meanwhile, and the time until the server has closed them all is measured.
"""
import argparse
import concurrent.futures
import datetime
import http.client
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = "import sys; from web import serve; serve.serve(sys.argv[1], port=0)"


def get(port, path):
    t0 = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status == 200, time.monotonic() - t0
    except OSError:
        return False, time.monotonic() - t0


def load(port, path, clients, requests):
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda _: get(port, path), range(requests)))
    wall = time.monotonic() - t0
    latencies = sorted(s for _, s in results)
    return {"rps": requests / wall, "failed": sum(not ok for ok, _ in results),
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]}


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def idle(proc, port, count):
    """(server threads while count idle clients are connected, ms a fresh GET took then, s until all were closed)."""
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    time.sleep(1)
    held = threads_of(proc.pid)
    ok, get_s = get(port, "/index.html")
    t0 = time.monotonic()
    for s in sockets:
        s.settimeout(600)
        s.recv(1)  # b'' once the server has closed it
        s.close()
    return held, 1000 * get_s if ok else None, time.monotonic() - t0 + 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", default="1,20,200", help="parallel clients, comma list [1,20,200]")
    p.add_argument("--requests", type=int, default=2000, help="requests per measurement [2000]")
    p.add_argument("--idle", type=int, default=300, help="idle clients for the idle measurement; 0: skip [300]")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "index.html"), "w") as f:
            f.write("<html>" + "Neural Face " * 420 + "</html>")
        with open(os.path.join(folder, "model.json"), "w") as f:
            f.write("{}")
        with open(os.path.join(folder, "weights.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.Popen([sys.executable, "-c", SERVER, folder], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            port = int(proc.stdout.readline().rsplit(":", 1)[1].split("/")[0])
            rows = []
            for path, size in (("/index.html", "5 KB"), ("/weights.bin", "1 MB")):
                for clients in map(int, args.clients.split(",")):
                    r = load(port, path, clients, args.requests)
                    rows.append(f"| {size} | {clients} | {args.requests} | {r['rps']:.0f} | {r['failed']} | "
                                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
                    print(rows[-1], flush=True)
            held, get_ms, closed_s = idle(proc, port, args.idle) if args.idle else (None, None, None)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print()
    print(f"{datetime.date.today()} · {platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()}"
          " · server and clients on one machine")
    print("| file | parallel clients | requests | requests/s | failed | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if held is not None:
        meanwhile = f"a GET meanwhile took {get_ms:.1f} ms" if get_ms is not None else "a GET meanwhile failed"
        print(f"\n{args.idle} idle clients (connected, sending nothing): the server process ran {held} threads; "
              f"{meanwhile}; the server closed all {args.idle} within "
              f"{closed_s:.1f} s of their connecting")

if __name__ == "__main__":
    main()
