"""The gateway beside Debian's nginx, side by side in one run, all driven by Debian's ``wrk``.

Run: python -m bench.gateway_vs_nginx [--rounds 5] [--seconds 5] [--connections 32] [--threads 2]
     [--nginx-workers 1] [--warmup 2]

Two copies of one v1 backend (``hello_world_api`` on the legacy runtime,
``engine.runtime.serve``): blue answers, green is what a mirror goes to. Then,
in one run, the same ``wrk`` load (POST ``/call/hello``, keep-alive
connections) goes

* **direct** to blue;
* through **the gateway** (``engine.deploy.gateway``, one process, three routes
  in its table): mirroring off; mirroring on (green gets every request, its
  answer compared); mirroring on and recording (both sides' samples buffered and
  written as Parquet segments every second, as in a parallel run);
* through **nginx** as a reverse proxy (pooled keep-alive upstream
  connections, as the gateway pools them): plain, and with its ``mirror``
  directive sending every request to green as well.

Every path is warmed up first (``--warmup`` seconds of the same load, not
counted). Each round then takes every path once, in a rotated order, so the
machine's drift spreads over all of them; each figure is the median over the
rounds (req/s, and wrk's p50 and p99). Ratios printed: gateway/nginx with
mirroring off (target >= 1.0), gateway-mirror/nginx-mirror (target >= 0.95),
and what recording costs on top of mirroring (target <= 10 %).

Like for like: the same backends, the same wrk connections; ``--nginx-workers``
is nginx's worker_processes, 1 by default like the gateway's one process; nginx
keeps idle keep-alive connections to each backend (``keepalive 64``, more than
the 32 a run needs, as the gateway pools up to 256) and, like the gateway, never
closes one after a number of requests (``keepalive_requests``). Beside req/s,
the proxy's own CPU per request (user and system time of its processes over the
path's rounds, from /proc) is printed: on a machine shared with other work the
req/s of a round moves with the load, its CPU per request much less.

Everything runs on this machine, wrk and nginx included, so the figures are a
share of its cores among the load generator, the proxy and two backends:
compare ratios, not absolute figures, and repeat on a busy machine. Where
nginx or wrk is missing it says which ``apt-get install`` brings it and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.deploy.supervisor import free_port, healthy

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = ROOT / "data" / "generated_systems" / "hello_world_api"
ENDPOINT = "hello"
BODY = json.dumps({"name": "bench"})
TOOLS = {"nginx": "nginx-light (or nginx)", "wrk": "wrk"}
"""Each binary the bench needs and the Debian package that brings it."""
GATEWAY_ROUTES = {"gateway": {}, "gateway-mirror": {"mirror": True}, "gateway-record": {"mirror": True}}
"""The gateway's routes, one per path through it: plain, mirrored, mirrored and recorded."""


def find_tools() -> dict[str, str]:
    """Paths of nginx and wrk, or exit saying which package brings the missing one."""
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        packages = " ".join(TOOLS[name].split(" ")[0] for name in missing)
        raise SystemExit(f"{', '.join(missing)} not found: sudo apt-get install {packages}")
    return {name: str(path) for name, path in found.items()}


def start(command: list[str], port: int, health: str, log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` and wait until ``health`` answers on ``port`` (30 s at most)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not healthy(port, health):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{command[0]} did not start on port {port}: see {log}")
        time.sleep(0.05)
    return proc


def serve_backend(work: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "engine.runtime.serve", "--system-dir", str(SYSTEM), "--runtime", "v1"]
    return start([*command, "--port", str(port)], port, "/health", work / f"{name}.log"), port


def gateway_routes(blue: int, green: int, run_id: str) -> dict[str, object]:
    slots = {"blue": {"port": blue, "version": "old"}, "green": {"port": green, "version": "new"}}
    systems = {}
    for name, extra in GATEWAY_ROUTES.items():
        record = run_id if name == "gateway-record" else None
        route = {
            "active": "blue",
            "canary_weight": 0.0,
            "mirror": False,
            "record_run": record,
            "slots": slots,
        }
        systems[name] = route | extra
    return {"systems": systems}


NGINX_CONF = """
worker_processes {workers};
{user}
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    keepalive_requests 1000000;
    upstream blue {{ server 127.0.0.1:{blue}; keepalive 64; keepalive_requests 1000000; }}
    upstream green {{ server 127.0.0.1:{green}; keepalive 64; keepalive_requests 1000000; }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {{
        listen 127.0.0.1:{plain};
        location = /health {{ return 200 '{{"status": "ok"}}'; }}
        location /call/ {{ proxy_pass http://blue; }}
    }}
    server {{
        listen 127.0.0.1:{mirrored};
        location = /health {{ return 200 '{{"status": "ok"}}'; }}
        location /call/ {{ mirror /_mirror; mirror_request_body on; proxy_pass http://blue; }}
        location = /_mirror {{ internal; proxy_pass http://green$request_uri; }}
    }}
}}
"""
"""Two servers in one nginx: a plain reverse proxy and one whose every request is mirrored to green."""


def start_nginx(
    nginx: str, work: Path, blue: int, green: int, workers: int
) -> tuple[subprocess.Popen, int, int]:
    plain, mirrored = free_port(), free_port()
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / temp).mkdir()
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers, user=user, work=work, blue=blue, green=green, plain=plain, mirrored=mirrored
        )
    )
    proc = start([nginx, "-c", str(conf), "-p", str(work)], plain, "/health", work / "nginx.log")
    return proc, plain, mirrored


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Load:
    """What wrk measured on one path in one round, and the CPU the path's proxy took meanwhile."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_s: float = 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes took so far (/proc/<pid>/stat utime + stime)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (nginx's workers under its master)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def wrk(binary: str, script: Path, url: str, args: argparse.Namespace, seconds: int = 0) -> Load:
    """One wrk run on ``url``; its requests/s, p50, p99 and non-2xx or socket errors."""
    out = subprocess.run(
        [
            binary,
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{seconds or args.seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * UNITS[unit]

    errors = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout)\D*(\d+)", out)
    )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Load(rps, latency("50"), latency("99"), errors, requests)


@dataclass
class Path_:
    label: str
    url: str
    proxy: list[int] = field(default_factory=list)
    """The processes between wrk and the backend (none for direct), whose CPU per request is printed."""
    loads: list[Load] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(load, attribute) for load in self.loads)

    def measure(self, binary: str, script: Path, args: argparse.Namespace) -> None:
        before = cpu_seconds(self.proxy)
        load = wrk(binary, script, self.url, args)
        load.cpu_s = cpu_seconds(self.proxy) - before
        self.loads.append(load)

    def cpu_us(self) -> float:
        """The proxy's CPU microseconds per request over all rounds."""
        requests = sum(load.requests for load in self.loads)
        return sum(load.cpu_s for load in self.loads) / max(1, requests) * 1e6


def ratio_line(label: str, a: Path_, b: Path_, target: str) -> str:
    """Ratio of the median req/s, the median of the rounds' own ratios, each round's, and the CPU ratio."""
    rps = a.median("rps") / b.median("rps")
    rounds = [x.rps / y.rps for x, y in zip(a.loads, b.loads, strict=True)]
    per_round = ", ".join(f"{r:.2f}" for r in rounds)
    cpu = f"; proxy CPU per request {a.cpu_us() / b.cpu_us():.2f}x" if a.proxy and b.proxy else ""
    return (
        f"  {label:<36} {rps:5.2f}x  median of rounds {statistics.median(rounds):5.2f}x  "
        f"(rounds: {per_round}; target {target}{cpu})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load per path before the rounds")
    args = parser.parse_args()
    tools = find_tools()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="gateway-vs-nginx-") as tmp:
        work = Path(tmp)
        try:
            blue_proc, blue = serve_backend(work, "blue")
            green_proc, green = serve_backend(work, "green")
            procs += [blue_proc, green_proc]
            routes = work / "routes.json"
            routes.write_text(json.dumps(gateway_routes(blue, green, "parallel-bench")))
            gw = free_port()
            gateway = [sys.executable, "-m", "engine.deploy.gateway", "--routes", str(routes)]
            gateway += ["--samples-dir", str(work / "samples"), "--port", str(gw)]
            gateway_proc = start(gateway, gw, "/_switchyard/health", work / "gateway.log")
            procs.append(gateway_proc)
            nginx, plain, mirrored = start_nginx(tools["nginx"], work, blue, green, args.nginx_workers)
            procs.append(nginx)
            nginx_pids = [nginx.pid, *children(nginx.pid)]
            script = work / "post.lua"
            script.write_text(WRK_SCRIPT.format(body=json.dumps(BODY)))
            base = "http://127.0.0.1:{}"
            paths = [
                Path_("direct", f"{base.format(blue)}/call/{ENDPOINT}"),
                *(
                    Path_(name, f"{base.format(gw)}/s/{name}/call/{ENDPOINT}", [gateway_proc.pid])
                    for name in GATEWAY_ROUTES
                ),
                Path_("nginx", f"{base.format(plain)}/call/{ENDPOINT}", nginx_pids),
                Path_("nginx-mirror", f"{base.format(mirrored)}/call/{ENDPOINT}", nginx_pids),
            ]
            print(
                f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {args.rounds} rounds after "
                f"{args.warmup} s of warm-up per path; nginx worker_processes {args.nginx_workers}; "
                f"{os.cpu_count()} cores; /proc/loadavg before: {Path('/proc/loadavg').read_text().strip()}"
            )
            for path in paths:
                if args.warmup:
                    wrk(tools["wrk"], script, path.url, args, seconds=args.warmup)
            for r in range(args.rounds):
                for path in paths[r % len(paths) :] + paths[: r % len(paths)]:
                    path.measure(tools["wrk"], script, args)
            recorded = sum(1 for _ in (work / "samples").glob("system=*/run=*/part-*.parquet"))
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                proc.wait(10)
    print(f"/proc/loadavg after: {Path('/proc/loadavg').read_text().strip()}")
    by = {p.label: p for p in paths}
    print(
        f"\n  {'path':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'proxy CPU':>10}"
        "   (medians over rounds; the proxy's CPU us per request over them all)"
    )
    for p in paths:
        errors = sum(load.errors for load in p.loads)
        figures = f"{p.median('rps'):9.0f} {p.median('p50_ms'):8.2f} {p.median('p99_ms'):8.2f}"
        cpu = f"{p.cpu_us():7.0f} us" if p.proxy else f"{'-':>10}"
        print(f"  {p.label:<16} {figures} {errors:7d} {cpu}")
    print(f"\n  segments the recording route wrote: {recorded}")
    print("\nratios of req/s (of the medians over rounds; each round's in brackets)")
    print(ratio_line("gateway / nginx, mirroring off", by["gateway"], by["nginx"], ">= 1.0"))
    print(ratio_line("gateway-mirror / nginx-mirror", by["gateway-mirror"], by["nginx-mirror"], ">= 0.95"))
    record = by["gateway-record"].median("rps") / by["gateway-mirror"].median("rps")
    print(f"  {'recording cost: 1 - record / mirror':<36} {1 - record:+5.1%}  (target <= 10 %)")
    print(ratio_line("gateway-record / gateway-mirror", by["gateway-record"], by["gateway-mirror"], "-"))
    print(ratio_line("gateway-record / nginx-mirror", by["gateway-record"], by["nginx-mirror"], "-"))
    print(ratio_line("gateway / direct", by["gateway"], by["direct"], "-"))
    print(ratio_line("nginx / direct", by["nginx"], by["direct"], "-"))


if __name__ == "__main__":
    main()
