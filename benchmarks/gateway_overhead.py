#!/usr/bin/env python3
"""Gateway overhead benchmark: Headrace vs the LiteLLM proxy, side by side.

Layout (2 cores): the mock upstream and every load generator run on core 0;
the gateway under test runs alone on core 1 (so its throughput is "per core").
Each gateway is started, measured and stopped in turn; the direct baseline
(the same requests straight to the mock, same client) is measured inside each
gateway's phase, right next to the gateway's own numbers.

Measures, per gateway:
  * closed-loop c=1 latency with a raw keep-alive socket client, interleaved in
    blocks with the direct baseline; added = gateway - direct (p50, p99);
    also the gateway's CPU time per request;
  * open-loop latency at fixed arrival rates (aiohttp + uvloop; latency counted
    from the *scheduled* send time, so no coordinated omission); added p50/p99;
  * max RPS per core: wrk stepping connections, highest RPS whose
    p99 - direct p99 (same connection count) stays under 50 ms, with no errors.

Usage (from the repo root, with the project venv):
  .venv/bin/python benchmarks/gateway_overhead.py            # full run, ~5-6 min
  .venv/bin/python benchmarks/gateway_overhead.py --quick    # ~1 min
  .venv/bin/python benchmarks/gateway_overhead.py --c1-only --skip-litellm --c1-blocks 8
  .venv/bin/python benchmarks/gateway_overhead.py --setup    # only install LiteLLM

LiteLLM is installed into benchmarks/.venv-litellm from
benchmarks/requirements-litellm.txt when that venv is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LITELLM_VENV = HERE / ".venv-litellm"
LITELLM_REQUIREMENTS = HERE / "requirements-litellm.txt"
RESULTS_DIR = HERE / "results"

CLIENT_CORE = 0  # mock upstream + load generators
GATEWAY_CORE = 1  # the gateway under test, alone
API_KEY = "pk_test_gateway_overhead_bench"
P99_BUDGET_MS = 50.0
MESSAGES = [{"role": "user", "content": "hello"}]

try:
    import psutil  # type: ignore
except ImportError:  # pragma: no cover - optional, only for CPU accounting
    psutil = None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------
# statistics helpers
# --------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile; inf entries (failures, timeouts) count as slowest."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def fmt_ms(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def jsonable(obj: Any) -> Any:
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf"
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------
# processes, pinning, CPU accounting
# --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REALTIME = {"on": False}  # --realtime: SCHED_FIFO for the latency phases


def apply_realtime() -> None:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))


def set_realtime(procs: list[Proc], on: bool) -> None:
    """Switch every thread of our servers (and of this script) to SCHED_FIFO or back.

    --realtime uses SCHED_FIFO for the latency measurements only: at saturation
    (wrk) the kernel's RT throttling (95% of each second) would stall a busy
    FIFO process ~50 ms a second and wreck the p99 it is meant to measure.
    """
    REALTIME["on"] = on
    policy = os.SCHED_FIFO if on else os.SCHED_OTHER
    param = os.sched_param(10 if on else 0)
    pids = [os.getpid()]
    for proc in procs:
        if not proc.alive():
            continue
        pids.append(proc.pid)
        if psutil is not None:
            try:
                pids += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
            except psutil.Error:
                pass
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setscheduler(tid, policy, param)
            except OSError:
                pass


def pin_preexec(core: int, nice: int):
    realtime = REALTIME["on"]

    def preexec() -> None:
        os.setsid()
        os.sched_setaffinity(0, {core})
        if realtime:
            try:
                apply_realtime()
            except OSError:
                pass
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
            except OSError:
                pass
    return preexec


class Proc:
    """A server process we started (own session, pinned); stopped by its own pid."""

    def __init__(self, name: str, cmd: list[str], *, core: int, nice: int,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 log_path: Path):
        self.name = name
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.popen = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=self.log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=pin_preexec(core, nice),
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def cpu_seconds(self) -> float:
        """CPU time of the process and its live descendants."""
        if psutil is None:
            return _proc_stat_cpu(self.pid)
        try:
            p = psutil.Process(self.pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.Error:
            return math.nan
        total = 0.0
        for q in procs:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        if self.popen.poll() is None:
            # The process group is the session this script created for it (setsid).
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=5)
        self.log_file.close()


def _proc_stat_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.nan


def read_proc_stat() -> dict[str, tuple[float, float]]:
    """{cpu name: (busy seconds, total seconds)} from /proc/stat."""
    tck = os.sysconf("SC_CLK_TCK")
    out: dict[str, tuple[float, float]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        name, *vals = line.split()
        v = [int(x) for x in vals]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        total = sum(v[:8])
        out[name] = ((total - idle) / tck, total / tck)
    return out


class CpuWindow:
    """CPU use over a window: per core busy %, our processes, and everybody else."""

    def __init__(self, procs: list[Proc]):
        self.procs = procs
        self.t0 = time.perf_counter()
        self.stat0 = read_proc_stat()
        self.ours0 = self._ours()

    def _ours(self) -> float:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return own + sum(p.cpu_seconds() for p in self.procs if p.alive())

    def close(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        stat1 = read_proc_stat()
        ours = self._ours() - self.ours0
        busy = {k: stat1[k][0] - self.stat0[k][0] for k in stat1 if k in self.stat0}
        total_busy = busy.get("cpu", math.nan)
        per_core = {k: round(100 * v / elapsed, 1) for k, v in busy.items() if k != "cpu"}
        return {
            "elapsed_s": elapsed,
            "core_busy_pct": per_core,
            "foreign_cores": max(0.0, (total_busy - ours) / elapsed) if elapsed else math.nan,
        }


# --------------------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------------------

def http_json(method: str, url: str, body: Any = None, headers: dict | None = None,
              timeout: float = 10.0) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode()


def wait_until(pred, timeout: float, proc: Proc | None = None, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return False
        if pred():
            return True
        time.sleep(interval)
    return False


@dataclass
class Target:
    name: str  # "direct", "headrace", "litellm"
    port: int
    model: str
    path: str = "/v1/chat/completions"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def body(self) -> bytes:
        return json.dumps({"model": self.model, "messages": MESSAGES}).encode()


def all_headers(target: Target) -> dict[str, str]:
    return {"Content-Type": "application/json", **target.headers}


# --------------------------------------------------------------------------------------
# closed loop c=1: raw keep-alive socket
# --------------------------------------------------------------------------------------

_CL = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


class RawClient:
    """Minimal HTTP/1.1 keep-alive client: one pre-built request, no parsing beyond framing."""

    def __init__(self, target: Target):
        self.port = target.port
        body = target.body
        head = [f"POST {target.path} HTTP/1.1", f"Host: 127.0.0.1:{target.port}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in all_headers(target).items()]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        return s

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def call(self) -> int:
        s = self.sock or self._connect()
        s.sendall(self.request)
        recv = s.recv
        data = b""
        while True:
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response head")
            data += chunk
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                break
        head = data[:end].lower()
        body = data[end + 4:]
        status = int(head[9:12])
        m = _CL.search(head)
        if m:
            need = int(m.group(1))
            while len(body) < need:
                chunk = recv(65536)
                if not chunk:
                    raise ConnectionError("closed mid-body")
                body += chunk
        elif b"transfer-encoding: chunked" in head:
            while not body.endswith(b"0\r\n\r\n"):
                chunk = recv(65536)
                if not chunk:
                    raise ConnectionError("closed mid-body")
                body += chunk
        else:
            while chunk := recv(65536):
                pass
            self.close()
        if b"\r\nconnection: close" in head:
            self.close()
        return status


def closed_loop_c1(target: Target, seconds: float, max_requests: int = 1_000_000
                   ) -> tuple[list[float], int]:
    """Latencies (ms) of back-to-back requests for `seconds`; failures are inf."""
    client = RawClient(target)
    lat: list[float] = []
    errors = 0
    perf = time.perf_counter
    deadline = perf() + seconds
    try:
        while perf() < deadline and len(lat) < max_requests:
            t0 = perf()
            try:
                ok = client.call() == 200
            except OSError:
                client.close()
                ok = False
            t1 = perf()
            if ok:
                lat.append((t1 - t0) * 1000)
            else:
                errors += 1
                lat.append(math.inf)
                time.sleep(0.01)
    finally:
        client.close()
    return lat, errors


def measure_c1(gateway: Target, direct: Target, gw_proc: Proc, *, blocks: int,
               gw_seconds: float, direct_seconds: float, warmup_s: float) -> dict[str, Any]:
    closed_loop_c1(direct, warmup_s / 2)
    closed_loop_c1(gateway, warmup_s)
    gw_all: list[float] = []
    direct_all: list[float] = []
    per_block = []
    gw_cpu = 0.0
    gw_errors = direct_errors = 0
    for _ in range(blocks):
        d, de = closed_loop_c1(direct, direct_seconds)
        cpu0 = gw_proc.cpu_seconds()
        g, ge = closed_loop_c1(gateway, gw_seconds)
        gw_cpu += gw_proc.cpu_seconds() - cpu0
        gw_all += g
        direct_all += d
        gw_errors += ge
        direct_errors += de
        per_block.append({
            "direct_p50": pct(d, 50), "direct_p99": pct(d, 99),
            "gateway_p50": pct(g, 50), "gateway_p99": pct(g, 99),
            "added_p50": pct(g, 50) - pct(d, 50), "added_p99": pct(g, 99) - pct(d, 99),
            "n_gateway": len(g), "n_direct": len(d),
        })
    added_p50s = [b["added_p50"] for b in per_block]
    return {
        "direct_p50": pct(direct_all, 50), "direct_p99": pct(direct_all, 99),
        "gateway_p50": pct(gw_all, 50), "gateway_p90": pct(gw_all, 90),
        "gateway_p99": pct(gw_all, 99), "gateway_max": max(gw_all) if gw_all else math.nan,
        "added_p50": pct(gw_all, 50) - pct(direct_all, 50),
        "added_p99": pct(gw_all, 99) - pct(direct_all, 99),
        "added_p50_blocks": {"min": min(added_p50s), "median": statistics.median(added_p50s),
                             "max": max(added_p50s)},
        "gateway_cpu_ms_per_request": 1000 * gw_cpu / max(1, len(gw_all)),
        "n_gateway": len(gw_all), "n_direct": len(direct_all),
        "errors_gateway": gw_errors, "errors_direct": direct_errors,
        "blocks": per_block,
    }


# --------------------------------------------------------------------------------------
# open loop: fixed arrival schedule, aiohttp + uvloop
# --------------------------------------------------------------------------------------

async def _open_loop(target: Target, rate: float, seconds: float, warmup_s: float,
                     grace_s: float) -> dict[str, Any]:
    import aiohttp

    headers = all_headers(target)
    body = target.body
    perf = time.perf_counter
    n = int(rate * (seconds + warmup_s))
    lat: list[float] = [math.inf] * n
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=1000, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int, scheduled: float) -> None:
            try:
                async with session.post(target.url, data=body, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except Exception as e:
                status = type(e).__name__
            key = str(status)
            statuses[key] = statuses.get(key, 0) + 1
            if status == 200:
                lat[i] = (perf() - scheduled) * 1000

        tasks = []
        start = perf() + 0.05
        late_sends = 0
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                late_sends += 1
            tasks.append(asyncio.create_task(one(i, scheduled)))
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    skip = int(rate * warmup_s)
    measured = lat[skip:]
    ok = sum(1 for v in measured if not math.isinf(v))
    return {
        "rate": rate, "sent": len(measured), "ok": ok, "unfinished": len(pending),
        "statuses": statuses, "late_sends_over_5ms": late_sends,
        "achieved_rps": ok / seconds,
        "p50": pct(measured, 50), "p90": pct(measured, 90), "p99": pct(measured, 99),
    }


def open_loop(target: Target, rate: float, seconds: float, warmup_s: float = 1.0,
              grace_s: float = 5.0) -> dict[str, Any]:
    try:
        import uvloop  # type: ignore
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_open_loop(target, rate, seconds, warmup_s, grace_s))
    finally:
        loop.close()


# --------------------------------------------------------------------------------------
# wrk: closed loop at N connections
# --------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _wrk_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        return math.nan
    return float(m.group(1)) * _UNITS[m.group(2)]


def write_lua(target: Target, directory: Path) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(target.body.decode())}"]
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in all_headers(target).items()]
    path = directory / f"post-{target.name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(wrk: str, target: Target, lua: Path, conns: int, seconds: float, nice: int
            ) -> dict[str, Any]:
    cmd = [wrk, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "30s", "-s", str(lua), f"http://127.0.0.1:{target.port}{target.path}"]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         preexec_fn=pin_preexec(CLIENT_CORE, nice), timeout=seconds + 60)
    text = out.stdout
    res: dict[str, Any] = {"conns": conns, "rps": math.nan, "p50": math.nan, "p99": math.nan,
                           "non_2xx": 0, "socket_errors": 0, "requests": 0}
    for pname in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pname}%\s+(\S+)", text, re.M)
        if m:
            res[f"p{pname}"] = _wrk_ms(m.group(1))
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        res["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        res["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        res["non_2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      text):
        res["socket_errors"] = sum(int(x) for x in m.groups())
    if out.returncode != 0 or math.isnan(res["rps"]):
        res["error"] = (out.stderr or text)[-300:]
    return res


async def _closed_loop_n(target: Target, conns: int, seconds: float) -> dict[str, Any]:
    """wrk stand-in: `conns` keep-alive connections, each sending back to back."""
    client = RawClient(target)
    request = client.request
    perf = time.perf_counter
    lat: list[float] = []
    errors = 0
    stop_at = perf() + seconds

    async def worker() -> None:
        nonlocal errors
        writer = None
        while perf() < stop_at:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
                t0 = perf()
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                m = _CL.search(head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                if head[9:12] == b"200":
                    lat.append((perf() - t0) * 1000)
                else:
                    errors += 1
                if b"\r\nconnection: close" in head:  # e.g. Hypercorn, every 1000 requests
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError):
                # a server may also just close a kept-alive connection: retry on a new one
                errors += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    t_start = perf()
    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = perf() - t_start
    return {"conns": conns, "rps": len(lat) / elapsed, "p50": pct(lat, 50), "p75": pct(lat, 75),
            "p90": pct(lat, 90), "p99": pct(lat, 99), "non_2xx": errors, "socket_errors": 0,
            "requests": len(lat), "tool": "python"}


def run_python_load(target: Target, conns: int, seconds: float) -> dict[str, Any]:
    try:
        import uvloop  # type: ignore
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_closed_loop_n(target, conns, seconds))
    finally:
        loop.close()


def run_load(wrk: str | None, target: Target, lua: Path | None, conns: int, seconds: float,
             nice: int) -> dict[str, Any]:
    if wrk and lua:
        return run_wrk(wrk, target, lua, conns, seconds, nice)
    return run_python_load(target, conns, seconds)


def wait_idle(proc: Proc, limit_s: float = 30.0, threshold_pct: float = 15.0) -> float:
    """Wait until the gateway stops burning CPU (backlog from an overload drained)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s and proc.alive():
        c0 = proc.cpu_seconds()
        time.sleep(0.5)
        if 100 * (proc.cpu_seconds() - c0) / 0.5 < threshold_pct:
            break
    return time.monotonic() - t0


def measure_max_rps(wrk: str | None, gateway: Target, direct: Target, gw_proc: Proc,
                    procs: list[Proc],
                    workdir: Path, conns_steps: list[int], gw_seconds: float,
                    direct_seconds: float, nice: int) -> dict[str, Any]:
    gw_lua = write_lua(gateway, workdir) if wrk else None
    direct_lua = write_lua(direct, workdir) if wrk else None
    steps = []
    best = None
    for conns in conns_steps:
        for attempt in (1, 2):
            d = run_load(wrk, direct, direct_lua, conns, direct_seconds, nice)
            win = CpuWindow(procs)
            cpu0 = gw_proc.cpu_seconds()
            g = run_load(wrk, gateway, gw_lua, conns, gw_seconds, nice)
            cpu = win.close()
            gw_cpu_pct = 100 * (gw_proc.cpu_seconds() - cpu0) / cpu["elapsed_s"]
            overhead = g["p99"] - d["p99"]
            ok = ("error" not in g and g["non_2xx"] == 0 and g["socket_errors"] == 0
                  and overhead < P99_BUDGET_MS)
            step = {"conns": conns, "attempt": attempt, "gateway": g, "direct": d,
                    "p99_overhead": overhead, "qualifies": ok, "gateway_cpu_pct": gw_cpu_pct,
                    "cpu": cpu}
            steps.append(step)
            log(f"    c={conns:<3} {gateway.name}: {g['rps']:8.1f} rps p50 {fmt_ms(g['p50'])} "
                f"p99 {fmt_ms(g['p99'])} ms | direct {d['rps']:8.1f} rps p99 "
                f"{fmt_ms(d['p99'])} ms | p99 overhead {fmt_ms(overhead, 2)} ms | gw cpu "
                f"{gw_cpu_pct:.0f}% | other procs {cpu['foreign_cores']:.2f} cores | errors "
                f"{g['non_2xx'] + g['socket_errors']}{'' if ok else '  (over budget)'}")
            if ok and (best is None or g["rps"] > best["gateway"]["rps"]):
                best = step
            wait_idle(gw_proc)
            if ok:
                break
            # Over budget: measure the step once more, so that one burst of noise from
            # other processes does not end the search early.
        if not ok:
            break  # more connections only queue more: p99 will not come back under budget
    return {
        "max_rps": best["gateway"]["rps"] if best else 0.0,
        "at_conns": best["conns"] if best else None,
        "gateway_cpu_pct_at_max": best["gateway_cpu_pct"] if best else None,
        "steps": steps,
    }


# --------------------------------------------------------------------------------------
# the servers
# --------------------------------------------------------------------------------------

def start_mock(python: str, nice: int, workdir: Path) -> tuple[Proc, Target]:
    port = free_port()
    proc = Proc("mock", [python, "-m", "tests.support.mock_upstream", "--host", "127.0.0.1",
                         "--port", str(port)],
                core=CLIENT_CORE, nice=nice, cwd=REPO, log_path=workdir / "mock.log")
    target = Target("direct", port, "mock-model")
    ok = wait_until(lambda: http_json("POST", target.url, {"model": "mock-model",
                                                            "messages": MESSAGES})[0] == 200,
                    30, proc)
    if not ok:
        proc.stop()
        raise RuntimeError(f"mock upstream did not start:\n{proc.tail()}")
    return proc, target


def headrace_command(python: str) -> list[str]:
    exe = Path(python).parent / "headrace"
    if exe.exists():
        return [str(exe), "api"]
    found = shutil.which("headrace")
    if found:
        return [found, "api"]
    return [python, "-c", "from api.cli import main; main()", "api"]


def start_headrace(python: str, mock: Target, nice: int, workdir: Path,
                   governance: bool = False) -> tuple[Proc, Target]:
    """Auth and usage accounting are always on; `governance` adds Redis, rate
    limits on the key and its team, and a budget, so every request passes the
    whole evaluate -> decide -> account pipeline against Redis."""
    port = free_port()
    data_dir = workdir / "headrace-data"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env.update({
        "HEADRACE_DATA_DIR": str(data_dir), "HEADRACE_HOST": "127.0.0.1",
        "HEADRACE_PORT": str(port), "HEADRACE_ACCESS_LOG": "false",
        "HEADRACE_LOG_LEVEL": "WARNING", "HEADRACE_ADMIN_API_KEY": API_KEY,
    })
    if governance:
        env["HEADRACE_REDIS_URL"] = os.environ.get("BENCH_REDIS_URL",
                                                   "redis://127.0.0.1:6379/14")
    proc = Proc("headrace", headrace_command(python), core=GATEWAY_CORE, nice=nice, env=env,
                cwd=REPO, log_path=workdir / "headrace.log")
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    if not wait_until(lambda: http_json("GET", base + "/health")[0] == 200, 60, proc):
        proc.stop()
        raise RuntimeError(f"headrace did not become healthy:\n{proc.tail()}")
    status, body = http_json("POST", base + "/admin/models", {
        "id": "bench", "provider": "openai_compatible", "model": "mock-model",
        "base_url": f"http://127.0.0.1:{mock.port}/v1"}, auth)
    if status not in (200, 201):
        proc.stop()
        raise RuntimeError(f"headrace: creating the model failed: {status} {body[:300]!r}")
    if governance:
        huge = {"requests_per_minute": 10**8, "requests_per_hour": 10**9,
                "requests_per_day": 10**10, "tokens_per_minute": 10**10,
                "max_concurrent": 10**5}
        http_json("POST", base + "/admin/teams", {"id": "bench-team", "rate_limits": huge},
                  auth)
        status, body = http_json("POST", base + "/admin/api-keys", {
            "name": "bench", "team_id": "bench-team", "rate_limits": huge}, auth)
        if status != 201:
            proc.stop()
            raise RuntimeError(f"headrace: creating the key failed: {status} {body[:300]!r}")
        created = json.loads(body)
        http_json("POST", base + "/admin/budgets", {
            "id": "bench-budget", "scope": "team", "scope_id": "bench-team",
            "amount_usd": 10**9, "period": "monthly"}, auth)
        auth = {"Authorization": f"Bearer {created['secret']}"}
    target = Target("headrace", port, "bench", headers=auth)
    if not wait_until(lambda: http_json("POST", target.url, {"model": "bench",
                                                              "messages": MESSAGES},
                                        auth)[0] == 200, 20, proc):
        proc.stop()
        raise RuntimeError(f"headrace does not answer chat completions:\n{proc.tail()}")
    return proc, target


def litellm_version() -> str | None:
    py = LITELLM_VENV / "bin" / "python"
    if not py.exists():
        return None
    out = subprocess.run([str(py), "-c", "import importlib.metadata as m;"
                          "print(m.version('litellm'))"], capture_output=True, text=True)
    return out.stdout.strip() or None


def litellm_packages() -> dict[str, str]:
    py = LITELLM_VENV / "bin" / "python"
    code = ("import importlib.metadata as m, json\n"
            "out = {}\n"
            "for n in ('litellm','uvicorn','uvloop','fastapi','httpx','aiohttp','openai'):\n"
            "    try: out[n] = m.version(n)\n"
            "    except Exception: pass\n"
            "print(json.dumps(out))")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {}


def setup_litellm(force: bool = False) -> tuple[bool, str]:
    """Create benchmarks/.venv-litellm and install the pinned LiteLLM proxy into it."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists() and not force:
        return True, f"LiteLLM {litellm_version()} already installed in {LITELLM_VENV}"
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    if not (LITELLM_VENV / "bin" / "python").exists():
        log(f"setup: creating venv {LITELLM_VENV} with {base_python}")
        r = subprocess.run([base_python, "-m", "venv", str(LITELLM_VENV)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return False, f"venv creation failed: {r.stderr.strip()[-300:]}"
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip"]
    log(f"setup: pip install -r {LITELLM_REQUIREMENTS.relative_to(REPO)} (a few minutes)")
    r = subprocess.run([*pip, "install", "-q", "--disable-pip-version-check",
                              "-r", str(LITELLM_REQUIREMENTS)], capture_output=True, text=True)
    if r.returncode != 0 or not exe.exists():
        lines = [ln for ln in (r.stderr or r.stdout).splitlines()
                 if ln.strip() and "is ignored" not in ln]
        return False, "pip install failed: " + " | ".join(lines[-3:])[-400:]
    return True, f"installed LiteLLM {litellm_version()} into {LITELLM_VENV}"


LITELLM_LOG_CONFIG = {
    # uvicorn's access log off (Headrace runs with its access log off too).
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": [], "level": "ERROR", "propagate": False},
    },
}


def start_litellm(mock: Target, nice: int, workdir: Path) -> tuple[Proc, Target]:
    port = free_port()
    cfg = workdir / "litellm.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        model_list:
          - model_name: bench
            litellm_params:
              model: openai/mock-model
              api_base: http://127.0.0.1:{mock.port}/v1
              api_key: x
        litellm_settings:
          callbacks: []
          success_callback: []
          failure_callback: []
          turn_off_message_logging: true
          set_verbose: false
          telemetry: false
        general_settings:
          disable_spend_logs: true
          disable_error_logs: true
        """))
    log_cfg = workdir / "litellm-log.json"
    log_cfg.write_text(json.dumps(LITELLM_LOG_CONFIG))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LITELLM_", "DATABASE_URL", "OPENAI_"))}
    env.update({
        "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "TELEMETRY": "False",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price map (no internet)
        "LITELLM_MODE": "PRODUCTION", "DISABLE_ADMIN_UI": "True",
        "HOME": str(workdir),
    })
    exe = LITELLM_VENV / "bin" / "litellm"
    proc = Proc("litellm", [str(exe), "--config", str(cfg), "--host", "127.0.0.1",
                            "--port", str(port), "--num_workers", "1", "--telemetry", "False",
                            "--log_config", str(log_cfg)],
                core=GATEWAY_CORE, nice=nice, env=env, cwd=workdir,
                log_path=workdir / "litellm.log")
    base = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_json("GET", base + "/health/liveliness")[0] == 200, 120,
                      proc, interval=0.5):
        proc.stop()
        raise RuntimeError(f"proxy did not become live:\n{proc.tail()}")
    target = Target("litellm", port, "bench", headers={"Authorization": f"Bearer {API_KEY}"})
    status, body = http_json("POST", target.url, {"model": "bench", "messages": MESSAGES},
                             target.headers, timeout=30)
    if status != 200 or b"Mock reply" not in body:
        proc.stop()
        raise RuntimeError(f"proxy answered {status}: {body[:300]!r}")
    return proc, target


# --------------------------------------------------------------------------------------
# one gateway's phase
# --------------------------------------------------------------------------------------

@dataclass
class Plan:
    c1_blocks: int
    c1_gw_s: float
    c1_direct_s: float
    c1_warmup_s: float
    rates: list[int]
    ol_gw_s: float
    ol_direct_s: float
    wrk_conns: list[int]
    wrk_gw_s: float
    wrk_direct_s: float
    c1_only: bool = False


def run_phase(name: str, gw_proc: Proc, gateway: Target, mock_proc: Proc, direct: Target,
              plan: Plan, wrk: str | None, nice: int, workdir: Path) -> dict[str, Any]:
    procs = [mock_proc, gw_proc]
    phase_cpu = CpuWindow(procs)
    out: dict[str, Any] = {"name": name}

    log(f"  [{name}] closed loop c=1: {plan.c1_blocks} blocks x "
        f"({plan.c1_direct_s:g}s direct + {plan.c1_gw_s:g}s gateway)")
    win = CpuWindow(procs)
    c1 = measure_c1(gateway, direct, gw_proc, blocks=plan.c1_blocks, gw_seconds=plan.c1_gw_s,
                    direct_seconds=plan.c1_direct_s, warmup_s=plan.c1_warmup_s)
    c1["cpu"] = win.close()
    out["c1"] = c1
    b = c1["added_p50_blocks"]
    log(f"    direct p50 {fmt_ms(c1['direct_p50'])} p99 {fmt_ms(c1['direct_p99'])} | "
        f"{name} p50 {fmt_ms(c1['gateway_p50'])} p99 {fmt_ms(c1['gateway_p99'])} ms | "
        f"added p50 {fmt_ms(c1['added_p50'])} (blocks {fmt_ms(b['min'])}..{fmt_ms(b['max'])}) "
        f"p99 {fmt_ms(c1['added_p99'])} ms | gw cpu {fmt_ms(c1['gateway_cpu_ms_per_request'])}"
        f" ms/req | n={c1['n_gateway']} errors={c1['errors_gateway']}")
    if plan.c1_only:
        out["cpu"] = phase_cpu.close()
        return out

    out["open_loop"] = []
    for rate in plan.rates:
        d = open_loop(direct, rate, plan.ol_direct_s)
        win = CpuWindow(procs)
        g = open_loop(gateway, rate, plan.ol_gw_s)
        cpu = win.close()
        row = {"rate": rate, "gateway": g, "direct": d, "cpu": cpu,
               "added_p50": g["p50"] - d["p50"], "added_p99": g["p99"] - d["p99"]}
        out["open_loop"].append(row)
        log(f"    open loop {rate:>4} rps: {name} p50 {fmt_ms(g['p50'])} p99 {fmt_ms(g['p99'])}"
            f" | direct p50 {fmt_ms(d['p50'])} p99 {fmt_ms(d['p99'])} | added p50 "
            f"{fmt_ms(row['added_p50'])} p99 {fmt_ms(row['added_p99'])} ms | ok {g['ok']}/"
            f"{g['sent']} | late sends {g['late_sends_over_5ms']} | "
            f"other procs {cpu['foreign_cores']:.2f} cores")
        wait_idle(gw_proc)

    log(f"  [{name}] max RPS ({'wrk' if wrk else 'python closed-loop load (no wrk)'}, "
        f"p99 overhead < {P99_BUDGET_MS:g} ms)")
    realtime = REALTIME["on"]
    if realtime:
        set_realtime(procs, False)  # RT throttling would stall a saturated FIFO process
    try:
        out["max_rps"] = measure_max_rps(wrk, gateway, direct, gw_proc, procs, workdir,
                                         plan.wrk_conns, plan.wrk_gw_s, plan.wrk_direct_s,
                                         nice)
    finally:
        if realtime:
            set_realtime(procs, True)
    out["max_rps"]["tool"] = "wrk" if wrk else "python"
    out["cpu"] = phase_cpu.close()
    return out


# --------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------

def summary_rows(hr: dict | None, ll: dict | None, plan: Plan) -> list[list[str]]:
    def get(phase, *keys):
        cur = phase
        for k in keys:
            if cur is None:
                return None
            if isinstance(k, int):
                cur = cur[k] if k < len(cur) else None
            else:
                cur = cur.get(k)
        return cur

    def ratio(a, b):
        if a is None or b is None or math.isnan(a) or math.isnan(b) or b <= 0 or a < 0:
            return None
        if math.isinf(a) or math.isinf(b):
            return None
        return a / b

    rows = []

    def add(metric, a, b, target="", verdict="", digits=3):
        r = ratio(a, b)
        rows.append([metric, fmt_ms(a, digits), fmt_ms(b, digits),
                     "n/a" if r is None else f"{r:.3g}", target, verdict])

    hp50, lp50 = get(hr, "c1", "added_p50"), get(ll, "c1", "added_p50")
    add("c=1 added p50 (ms)", hp50, lp50, "<= 1.0 ms",
        "n/a" if hp50 is None else ("PASS" if hp50 <= 1.0 else "FAIL"))
    r = ratio(hp50, lp50)
    add("c=1 added p50 vs LiteLLM", hp50, lp50, "ratio <= 0.25",
        "n/a" if r is None else ("PASS" if r <= 0.25 else "FAIL"))
    add("c=1 added p99 (ms)", get(hr, "c1", "added_p99"), get(ll, "c1", "added_p99"))
    add("c=1 gateway CPU per request (ms)", get(hr, "c1", "gateway_cpu_ms_per_request"),
        get(ll, "c1", "gateway_cpu_ms_per_request"))
    if not plan.c1_only:
        for i, rate in enumerate(plan.rates):
            for p in ("p50", "p99"):
                add(f"open loop {rate} rps added {p} (ms)",
                    get(hr, "open_loop", i, f"added_{p}"), get(ll, "open_loop", i, f"added_{p}"))
        hr_rps, ll_rps = get(hr, "max_rps", "max_rps"), get(ll, "max_rps", "max_rps")
        r = ratio(hr_rps, ll_rps)
        add("max RPS/core (p99 overhead < 50 ms)", hr_rps, ll_rps, "ratio >= 5",
            "n/a" if r is None else ("PASS" if r >= 5 else "FAIL"), digits=0)
    return rows


def print_table(rows: list[list[str]]) -> str:
    header = ["metric", "Headrace", "LiteLLM", "ratio HR/LL", "target", "pass/fail"]
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------

def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        plan = Plan(c1_blocks=2, c1_gw_s=1.0, c1_direct_s=0.5, c1_warmup_s=1.0,
                    rates=[50, 200], ol_gw_s=2.0, ol_direct_s=1.5,
                    wrk_conns=[1, 4, 16], wrk_gw_s=2.0, wrk_direct_s=1.0)
    else:
        plan = Plan(c1_blocks=5, c1_gw_s=3.0, c1_direct_s=1.5, c1_warmup_s=2.0,
                    rates=[50, 100, 200, 400], ol_gw_s=10.0, ol_direct_s=5.0,
                    wrk_conns=[1, 2, 4, 8, 16, 32, 64], wrk_gw_s=8.0, wrk_direct_s=3.0)
    if args.c1_blocks:
        plan.c1_blocks = args.c1_blocks
    if args.rates:
        plan.rates = [int(x) for x in args.rates.split(",")]
    if args.conns:
        plan.wrk_conns = [int(x) for x in args.conns.split(",")]
    plan.c1_only = args.c1_only
    return plan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~1 minute run")
    ap.add_argument("--governance", action="store_true",
                    help="Headrace with Redis, rate limits on key and team, and a budget")
    ap.add_argument("--setup", action="store_true",
                    help="(re)install LiteLLM into benchmarks/.venv-litellm and exit")
    ap.add_argument("--skip-litellm", action="store_true", help="Headrace only")
    ap.add_argument("--skip-headrace", action="store_true", help="LiteLLM only")
    ap.add_argument("--c1-only", action="store_true", help="only the closed-loop c=1 latency")
    ap.add_argument("--c1-blocks", type=int, help="interleaved direct/gateway c=1 blocks")
    ap.add_argument("--rates", help="open-loop rates, comma separated (default 50,100,200,400)")
    ap.add_argument("--conns", help="wrk connection steps, comma separated")
    ap.add_argument("--nice", type=int, default=None,
                    help="niceness for the servers and load generators (default -20 as root, "
                         "to shield the numbers from other work on this 2-core box; 0 = off)")
    ap.add_argument("--realtime", action="store_true",
                    help="run the servers and load generators SCHED_FIFO (root) for the c=1 "
                         "and open-loop latency: shields them from other processes far better "
                         "than nice (the max-RPS steps run under nice only: RT throttling "
                         "would stall a saturated FIFO process)")
    ap.add_argument("--python", default=sys.executable,
                    help="python of the Headrace venv (runs the mock and Headrace)")
    ap.add_argument("--out", type=Path, help="JSON result path")
    args = ap.parse_args(argv)

    if args.setup:
        ok, msg = setup_litellm(force=True)
        log(msg)
        if not shutil.which("wrk") and os.geteuid() == 0 and shutil.which("apt-get"):
            log("setup: apt-get install wrk")
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            r = subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
            ok = ok and r.returncode == 0
        return 0 if ok else 1

    if os.cpu_count() is None or len(os.sched_getaffinity(0)) < 2:
        log("warning: fewer than 2 usable cores; pinning will overlap")
    nice = args.nice if args.nice is not None else (-20 if os.geteuid() == 0 else 0)
    os.sched_setaffinity(0, {CLIENT_CORE})
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as e:
            log(f"cannot renice ({e}); running at default priority")
            nice = 0
    if args.realtime:
        try:
            apply_realtime()
            REALTIME["on"] = True
        except OSError as e:
            log(f"cannot use SCHED_FIFO ({e}); --realtime ignored")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    plan = make_plan(args)
    wrk = shutil.which("wrk")
    if not wrk and not plan.c1_only:
        log("warning: wrk not found (apt-get install wrk, or --setup as root): max RPS uses "
            "a Python closed-loop generator, which may saturate core 0 before the gateway")

    started = time.time()
    results: dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick, "plan": plan.__dict__, "nice": nice,
        "realtime": REALTIME["on"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "loadavg_start": Path("/proc/loadavg").read_text().split()[:3]},
        "layout": {"mock_and_clients_core": CLIENT_CORE, "gateway_core": GATEWAY_CORE},
    }

    litellm_reason = None
    if args.skip_litellm:
        litellm_reason = "skipped (--skip-litellm)"
    else:
        ok, msg = setup_litellm()
        log(msg)
        if not ok:
            litellm_reason = msg
    results["litellm_version"] = None if litellm_reason else litellm_version()
    if not litellm_reason:
        results["litellm_packages"] = litellm_packages()

    workdir = Path(tempfile.mkdtemp(prefix="gateway-overhead-"))
    mock_proc, direct = start_mock(args.python, nice, workdir)
    log(f"mock upstream on 127.0.0.1:{direct.port} (core {CLIENT_CORE}); workdir {workdir}")
    phases: dict[str, dict | None] = {"headrace": None, "litellm": None}
    try:
        if not args.skip_headrace:
            proc, target = start_headrace(args.python, direct, nice, workdir,
                                          governance=args.governance)
            log(f"headrace on 127.0.0.1:{target.port} (core {GATEWAY_CORE}, pid {proc.pid})")
            try:
                phases["headrace"] = run_phase("headrace", proc, target, mock_proc, direct,
                                               plan, wrk, nice, workdir)
            finally:
                proc.stop()
        if not litellm_reason:
            try:
                proc, target = start_litellm(direct, nice, workdir)
            except RuntimeError as e:
                litellm_reason = f"could not start the proxy: {e}"
            else:
                log(f"litellm {results['litellm_version']} on 127.0.0.1:{target.port} "
                    f"(core {GATEWAY_CORE}, pid {proc.pid})")
                try:
                    phases["litellm"] = run_phase("litellm", proc, target, mock_proc, direct,
                                                  plan, wrk, nice, workdir)
                finally:
                    proc.stop()
    finally:
        mock_proc.stop()

    results["headrace"] = phases["headrace"]
    results["litellm"] = phases["litellm"]
    results["litellm_unavailable"] = litellm_reason
    results["elapsed_s"] = time.time() - started
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]

    rows = summary_rows(phases["headrace"], phases["litellm"], plan)
    results["summary"] = [dict(zip(["metric", "headrace", "litellm", "ratio", "target",
                                    "verdict"], r, strict=True)) for r in rows]
    print()
    kind = ("quick" if args.quick else "full") + (" c=1-only" if plan.c1_only else "")
    print(f"Gateway overhead  ({kind} run, "
          f"{results['elapsed_s']:.0f} s; mock + clients on core {CLIENT_CORE}, gateway alone "
          f"on core {GATEWAY_CORE}; nice {nice}{', SCHED_FIFO' if REALTIME['on'] else ''}; "
          f"added = gateway - direct; LiteLLM {results['litellm_version'] or 'n/a'})")
    if litellm_reason:
        print(f"LiteLLM unavailable: {litellm_reason}")
    print(print_table(rows))
    foreign = [p["cpu"]["foreign_cores"] for p in phases.values() if p]
    if foreign:
        print(f"other processes on this machine used {max(foreign):.2f} cores on average "
              f"during a phase (0 = quiet); load average {results['machine']['loadavg_start']}"
              f" -> {results['machine']['loadavg_end']}")

    out = args.out or RESULTS_DIR / f"gateway_overhead-{time.strftime('%Y-%m-%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(jsonable(results), indent=2) + "\n")
    print(f"results: {out}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
