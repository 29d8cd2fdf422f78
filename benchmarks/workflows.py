#!/usr/bin/env python3
"""Workflow orchestration overhead: Headrace's engine vs Haystack 2.x, same shapes, same run.

In-process, no network. Every shape is warmed up, then run many times one after
the other; per run we record the wall time around the run call and the time spent
inside the services' calls (chat), and report

  run p50            per-run wall time (µs)
  ovh/step p50/mean  (run time - time inside service calls) / steps (µs)

Shapes:
  cheap-5 / cheap-20   template, conditional, template, ... (alternating), each step
                       referencing the previous template's output
  chat-5 / chat-20     chat steps against a chat service that returns a canned
                       completion immediately; each message references the previous reply
  fanout-5+join        5 independent template branches and a join referencing all five
  runs/s/core          sequential runs of cheap-5 in one process pinned to core 1

Haystack (pinned in requirements-haystack.txt, installed into benchmarks/.venv-haystack)
builds the same shapes from trivial custom @components (template-like, router-like,
fake chat) and runs them with Pipeline.run (sync) and AsyncPipeline.run_async, in a
subprocess using that venv's python. Both sides run pinned to core 1, one after the other.

Usage (from the repo root):
  .venv/bin/python benchmarks/workflows.py            # ~1 min
  .venv/bin/python benchmarks/workflows.py --quick
  .venv/bin/python benchmarks/workflows.py --setup    # only (re)install Haystack
  .venv/bin/python benchmarks/workflows.py --skip-haystack
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HS_VENV = HERE / ".venv-haystack"
HS_REQUIREMENTS = HERE / "requirements-haystack.txt"
TARGET_US = 50.0  # orchestration per cheap step
CORE = 1

SHAPES = [("cheap-5", "cheap", 5), ("cheap-20", "cheap", 20), ("chat-5", "chat", 5),
          ("chat-20", "chat", 20), ("fanout-5+join", "fanout", 6)]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pin() -> str:
    try:
        os.sched_setaffinity(0, {CORE})
        return f"pinned to core {CORE}"
    except (AttributeError, OSError) as error:
        return f"unpinned ({error})"


def summarize(samples: list[tuple[float, float]], steps: int) -> dict[str, float]:
    """samples: (run seconds, seconds inside service calls) per run."""
    runs = [r * 1e6 for r, _ in samples]
    per_step = [(r - s) * 1e6 / steps for r, s in samples]
    return {"run_p50": statistics.median(runs), "run_mean": statistics.fmean(runs),
            "ovh_p50": statistics.median(per_step), "ovh_mean": statistics.fmean(per_step),
            "n": len(samples)}


# --------------------------------------------------------------------------------------
# Headrace
# --------------------------------------------------------------------------------------

CANNED = "canned reply"


class CannedServices:
    """StepServices whose chat returns a canned completion at once; times itself."""

    def __init__(self) -> None:
        self.inside = 0.0
        self.calls = 0

    async def chat(self, request: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        response = {"id": "chatcmpl-1", "object": "chat.completion", "model": request.model,
                    "choices": [{"index": 0, "message": {"role": "assistant",
                                                         "content": CANNED},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
        self.calls += 1
        self.inside += time.perf_counter() - t0
        return response

    async def search(self, kb_id: str, request: Any) -> list[dict[str, Any]]:
        return []


def headrace_definition(kind: str, steps: int) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    if kind == "cheap":
        prev = None
        for i in range(steps):
            if i % 2 == 0:
                src = "${request:q}" if prev is None else "${step:" + prev + "}"
                out.append({"name": f"t{i}", "type": "template", "template": f"{src} {i}"})
                prev = f"t{i}"
            else:
                out.append({"name": f"c{i}", "type": "conditional",
                            "conditions": [{"field": "${step:" + prev + "}",
                                            "operator": "is_not_empty", "action": "continue"}]})
    elif kind == "chat":
        for i in range(steps):
            src = "${request:q}" if i == 0 else "${step:m" + str(i - 1) + ":content}"
            out.append({"name": f"m{i}", "type": "chat_completion", "model_id": "mock",
                        "user_message": f"{src} {i}"})
    else:
        for i in range(steps - 1):
            out.append({"name": f"b{i}", "type": "template", "template": "${request:q} " + str(i)})
        out.append({"name": "join", "type": "template",
                    "template": " | ".join("${step:b" + str(i) + "}" for i in range(steps - 1))})
    return {"id": f"bench-{kind}-{steps}", "steps": out}


def expected_output(kind: str, steps: int) -> Any:
    if kind == "cheap":
        text = "hello"
        for i in range(0, steps, 2):
            text = f"{text} {i}"
        return text
    if kind == "chat":
        return CANNED
    return " | ".join(f"hello {i}" for i in range(steps - 1))


async def headrace_shape(kind: str, steps: int, warmup: int, runs: int) -> dict[str, Any]:
    from engine.workflows import WorkflowExecutor, load_workflow

    compiled = load_workflow(headrace_definition(kind, steps))
    services = CannedServices()
    executor = WorkflowExecutor(services, max_concurrency=8)
    inputs = {"q": "hello"}
    perf = time.perf_counter
    result = None
    for _ in range(warmup):
        result = await executor.run(compiled, inputs)
    assert result is not None and result.success, result and result.error
    assert len(result.steps) == steps and all(s.success for s in result.steps)
    out = result.output["content"] if kind == "chat" else result.output
    assert out == expected_output(kind, steps), (out, expected_output(kind, steps))
    samples = []
    for _ in range(runs):
        before = services.inside
        t0 = perf()
        result = await executor.run(compiled, inputs)
        t1 = perf()
        samples.append((t1 - t0, services.inside - before))
    assert result.success
    return summarize(samples, steps)


async def headrace_throughput(seconds: float) -> float:
    from engine.workflows import WorkflowExecutor, load_workflow

    compiled = load_workflow(headrace_definition("cheap", 5))
    executor = WorkflowExecutor(CannedServices(), max_concurrency=8)
    inputs = {"q": "hello"}
    for _ in range(200):
        await executor.run(compiled, inputs)
    count, t0 = 0, time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(100):
            await executor.run(compiled, inputs)
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - t0)


def run_headrace(warmup: int, runs: int, seconds: float) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    results: dict[str, Any] = {}

    async def main() -> None:
        for label, kind, steps in SHAPES:
            n = runs if steps <= 6 else max(runs // 3, 200)
            results[label] = await headrace_shape(kind, steps, warmup, n)
        results["runs_per_s"] = await headrace_throughput(seconds)

    asyncio.run(main())
    return results


# --------------------------------------------------------------------------------------
# Haystack (runs in benchmarks/.venv-haystack as a subprocess)
# --------------------------------------------------------------------------------------

HAYSTACK_SCRIPT = r'''
import asyncio, json, os, statistics, sys, time
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
import logging
logging.disable(logging.WARNING)
import haystack
from haystack import AsyncPipeline, Pipeline, component

cfg = json.loads(sys.argv[1])
SHAPES, CORE = cfg["shapes"], cfg["core"]
try:
    os.sched_setaffinity(0, {CORE})
except (AttributeError, OSError):
    pass
CANNED = "canned reply"
INSIDE = [0.0]


@component
class Template:
    """Template-like: renders '<text> <suffix>'."""
    def __init__(self, suffix: str):
        self.suffix = suffix

    @component.output_types(text=str)
    def run(self, text: str):
        return {"text": f"{text} {self.suffix}"}


@component
class Router:
    """Router-like: 'yes' when the text is not empty, else 'no'."""
    @component.output_types(yes=str, no=str)
    def run(self, text: str):
        return {"yes": text} if text.strip() else {"no": text}


def chat_service(messages):
    """The canned upstream; the time inside it is subtracted."""
    t0 = time.perf_counter()
    response = {"id": "chatcmpl-1", "object": "chat.completion", "model": "mock",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": CANNED},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    INSIDE[0] += time.perf_counter() - t0
    return response


@component
class FakeChat:
    """Chat-like: builds messages, calls the canned service, returns the reply."""
    def __init__(self, suffix: str):
        self.suffix = suffix

    @component.output_types(content=str, meta=dict)
    def run(self, prompt: str):
        response = chat_service([{"role": "user", "content": f"{prompt} {self.suffix}"}])
        choice = response["choices"][0]
        return {"content": choice["message"]["content"],
                "meta": {"model": response["model"], "usage": response["usage"],
                         "finish_reason": choice["finish_reason"]}}


@component
class Join:
    @component.output_types(text=str)
    def run(self, a: str, b: str, c: str, d: str, e: str):
        return {"text": " | ".join((a, b, c, d, e))}


def build(cls, kind, steps):
    p = cls()
    if kind == "cheap":
        prev_t = None
        prev = None
        for i in range(steps):
            if i % 2 == 0:
                p.add_component(f"t{i}", Template(str(i)))
                if prev is not None:
                    p.connect(f"{prev}.yes", f"t{i}.text")
                prev = prev_t = f"t{i}"
            else:
                p.add_component(f"c{i}", Router())
                p.connect(f"{prev_t}.text", f"c{i}.text")
                prev = f"c{i}"
        data = {"t0": {"text": "hello"}}
        # the leaf's output comes back: the last router's 'yes' or the last template's text
        last = (f"c{steps - 1}", "yes") if steps % 2 == 0 else (f"t{steps - 1}", "text")
    elif kind == "chat":
        for i in range(steps):
            p.add_component(f"m{i}", FakeChat(str(i)))
            if i:
                p.connect(f"m{i - 1}.content", f"m{i}.prompt")
        data = {"m0": {"prompt": "hello"}}
        last = (f"m{steps - 1}", "content")
    else:
        names = "abcde"
        for i in range(steps - 1):
            p.add_component(f"b{i}", Template(str(i)))
        p.add_component("join", Join())
        for i in range(steps - 1):
            p.connect(f"b{i}.text", f"join.{names[i]}")
        data = {f"b{i}": {"text": "hello"} for i in range(steps - 1)}
        last = ("join", "text")
    return p, data, last


def expected(kind, steps):
    if kind == "cheap":
        text = "hello"
        for i in range(0, steps, 2):
            text = f"{text} {i}"
        return text
    if kind == "chat":
        return CANNED
    return " | ".join(f"hello {i}" for i in range(steps - 1))


def summarize(samples, steps):
    runs = [r * 1e6 for r, _ in samples]
    per = [(r - s) * 1e6 / steps for r, s in samples]
    return {"run_p50": statistics.median(runs), "run_mean": statistics.fmean(runs),
            "ovh_p50": statistics.median(per), "ovh_mean": statistics.fmean(per),
            "n": len(samples)}


def bench_sync(kind, steps, warmup, runs):
    p, data, (comp, key) = build(Pipeline, kind, steps)
    perf = time.perf_counter
    for _ in range(warmup):
        out = p.run(data)
    assert out[comp][key] == expected(kind, steps), out
    samples = []
    for _ in range(runs):
        before = INSIDE[0]
        t0 = perf()
        p.run(data)
        t1 = perf()
        samples.append((t1 - t0, INSIDE[0] - before))
    return summarize(samples, steps)


def bench_async(kind, steps, warmup, runs):
    p, data, (comp, key) = build(AsyncPipeline, kind, steps)
    perf = time.perf_counter

    async def main():
        for _ in range(warmup):
            out = await p.run_async(data)
        assert out[comp][key] == expected(kind, steps), out
        samples = []
        for _ in range(runs):
            before = INSIDE[0]
            t0 = perf()
            await p.run_async(data)
            t1 = perf()
            samples.append((t1 - t0, INSIDE[0] - before))
        return samples

    return summarize(asyncio.run(main()), steps)


def throughput(seconds):
    p, data, _ = build(Pipeline, "cheap", 5)
    for _ in range(200):
        p.run(data)
    count, t0 = 0, time.perf_counter()
    while True:
        for _ in range(100):
            p.run(data)
        count += 100
        now = time.perf_counter()
        if now - t0 >= seconds:
            return count / (now - t0)


result = {"version": haystack.__version__, "sync": {}, "async": {}}
for label, kind, steps in SHAPES:
    n = cfg["runs"] if steps <= 6 else max(cfg["runs"] // 3, 200)
    result["sync"][label] = bench_sync(kind, steps, cfg["warmup"], n)
    try:
        result["async"][label] = bench_async(kind, steps, cfg["warmup"], n)
    except Exception as error:  # AsyncPipeline missing or broken: sync still counts
        result["async"][label] = {"error": f"{type(error).__name__}: {error}"}
result["runs_per_s"] = throughput(cfg["seconds"])
print(json.dumps(result))
'''


def setup_haystack() -> tuple[bool, str]:
    python = HS_VENV / "bin" / "python"
    if not python.exists():
        log(f"setup: creating {HS_VENV}")
        base = Path(sys.base_prefix) / "bin" / "python3"
        r = subprocess.run([str(base if base.exists() else sys.executable), "-m", "venv",
                            str(HS_VENV)], capture_output=True, text=True)
        if r.returncode != 0:
            return False, f"venv creation failed: {r.stderr.strip()[-300:]}"
    log(f"setup: pip install -r {HS_REQUIREMENTS.relative_to(REPO)}")
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(HS_REQUIREMENTS)], capture_output=True, text=True)
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        return False, "pip install failed: " + " | ".join(lines[-3:])[-400:]
    return True, "ok"


def run_haystack(warmup: int, runs: int, seconds: float) -> tuple[dict[str, Any] | None, str]:
    python = HS_VENV / "bin" / "python"
    if not python.exists():
        ok, reason = setup_haystack()
        if not ok:
            return None, reason
    cfg = {"shapes": SHAPES, "core": CORE, "warmup": warmup, "runs": runs, "seconds": seconds}
    with tempfile.NamedTemporaryFile("w", suffix="_haystack_bench.py", delete=False) as f:
        f.write(HAYSTACK_SCRIPT)
        script = f.name
    try:
        env = {**os.environ, "HAYSTACK_TELEMETRY_ENABLED": "False",
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)
        r = subprocess.run([str(python), script, json.dumps(cfg)], capture_output=True,
                           text=True, env=env, timeout=900)
    except subprocess.TimeoutExpired:
        return None, "haystack benchmark timed out"
    finally:
        os.unlink(script)
    if r.returncode != 0:
        tail = " | ".join([ln for ln in r.stderr.splitlines() if ln.strip()][-3:])
        return None, f"haystack subprocess failed (rc {r.returncode}): {tail[-400:]}"
    return json.loads(r.stdout.strip().splitlines()[-1]), "ok"


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------

def fmt(v: float | None, width: int = 7) -> str:
    if v is None:
        return "-".rjust(width)
    return f"{v:{width}.1f}" if v < 1000 else f"{v:{width}.0f}"


def report(hr: dict[str, Any], hs: dict[str, Any] | None, hs_reason: str,
           pinned: str, load: tuple[str, str]) -> None:
    print(f"Workflow orchestration overhead (µs; in-process, {pinned}; "
          f"loadavg {load[0]} -> {load[1]})")
    if hs is None:
        print(f"Haystack unavailable: {hs_reason}")
    else:
        print(f"Haystack {hs['version']}: HS = Pipeline.run (sync), HSa = AsyncPipeline.run_async")
    head = (f"{'shape':<14}{'n':>6} | {'HR run':>7}{'HR ovh/step p50':>16}{'mean':>7} | "
            f"{'HS run':>7}{'HS ovh/step p50':>16}{'mean':>7}{'HSa p50':>8} | "
            f"{'HS/HR':>6}{'HSa/HR':>7}")
    print(head)
    print("-" * len(head))
    for label, _, _ in SHAPES:
        h = hr[label]
        s = hs["sync"].get(label) if hs else None
        a = hs["async"].get(label) if hs else None
        a_ok = a is not None and "error" not in a
        ratio = f"{s['ovh_p50'] / h['ovh_p50']:6.2f}x" if s else "     -"
        aratio = f"{a['ovh_p50'] / h['ovh_p50']:6.2f}x" if a_ok else "      -"
        print(f"{label:<14}{h['n']:>6} | {fmt(h['run_p50'])}{fmt(h['ovh_p50'], 16)}"
              f"{fmt(h['ovh_mean'])} | {fmt(s['run_p50'] if s else None)}"
              f"{fmt(s['ovh_p50'] if s else None, 16)}{fmt(s['ovh_mean'] if s else None)}"
              f"{fmt(a['ovh_p50'] if a_ok else None, 8)} | {ratio}{aratio}")
    hs_rps = hs["runs_per_s"] if hs else None
    rps_ratio = f"  (HR/HS {hr['runs_per_s'] / hs_rps:.2f}x)" if hs_rps else ""
    print(f"runs/s/core, cheap-5 sequential: HR {hr['runs_per_s']:.0f}   HS "
          f"{'-' if hs_rps is None else f'{hs_rps:.0f}'}{rps_ratio}")
    if hs:
        errors = {k: v["error"] for k, v in hs["async"].items() if "error" in v}
        if errors:
            print(f"AsyncPipeline errors: {errors}")
    worst = max(hr["cheap-5"]["ovh_p50"], hr["cheap-20"]["ovh_p50"])
    verdict = "PASS" if worst <= TARGET_US else "FAIL"
    print(f"Target: Headrace <= {TARGET_US:.0f} µs orchestration per cheap step (p50, worst of "
          f"cheap-5/cheap-20): {worst:.1f} µs -> {verdict}")


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs (~15 s)")
    ap.add_argument("--setup", action="store_true", help="(re)install Haystack and exit")
    ap.add_argument("--skip-haystack", action="store_true")
    ap.add_argument("--runs", type=int, default=None, help="measured runs per small shape")
    ap.add_argument("--json", type=Path, default=None, help="also write raw results here")
    args = ap.parse_args()
    if args.setup:
        ok, reason = setup_haystack()
        print("Haystack installed" if ok else f"Haystack unavailable: {reason}")
        sys.exit(0 if ok else 1)
    runs = args.runs or (600 if args.quick else 3000)
    warmup = 100 if args.quick else 300
    seconds = 1.0 if args.quick else 3.0
    load_before = loadavg()
    pinned = pin()
    log("measuring Headrace ...")
    hr = run_headrace(warmup, runs, seconds)
    hs, reason = None, "skipped (--skip-haystack)"
    if not args.skip_haystack:
        log("measuring Haystack ...")
        hs, reason = run_haystack(warmup, runs, seconds)
    report(hr, hs, reason, pinned, (load_before, loadavg()))
    if args.json:
        args.json.write_text(json.dumps({"headrace": hr, "haystack": hs,
                                         "haystack_reason": reason}, indent=1))


if __name__ == "__main__":
    main()
