"""Benchmark of the LSTM core against torch.nn.LSTM (run by hand; writes bench/results/core.md).

For each configuration of issue 2, tokens/s (B*T per second) for inference (no grad) and training
(forward + backward of out.sum()) of: torch.nn.LSTM; lstmkit's LSTM on the torch path; the reference
path (plain); the fused path (plain, forced); and every variant on its default path ("auto": the
compiled C++ kernel, or torch's kernel for weight drop) and, for the first configuration only (to keep
the run near 10 minutes), on the Python fused path and the reference path. Then the streaming step
latency (B1, I256, H256) of ``LSTM.step`` against ``torch.nn.LSTMCell`` and ``torch.nn.LSTM`` called
once per step, on one thread and on all cores (wall clock whatever ``--clock`` says), and the torch
path against torch.nn.LSTM alone in interleaved rounds (``--pairs``), with a second torch.nn.LSTM as
a control, to resolve its ratio from the noise.

All candidates of one configuration run interleaved (A, B, C, B, C, A, C, A, B, ...: the order
rotates each repetition, so that no candidate always runs first) and the table reports medians,
because the machine is shared; a ratio is the median over the repetitions of the ratio to
torch.nn.LSTM within one repetition, so that the machine's drift over the run cancels. Each timed pass
follows an untimed pass of the same module: a pass's time depends on what ran just before it (the
compiled layer-norm BiLSTM measured 0.69 of torch.nn.LSTM right after the Python fused path, 0.79
right after itself, same run), and a training loop runs one module over and over.

    .venv/bin/python bench/core.py                 # full run (about 15 minutes on 2 cores)
    .venv/bin/python bench/core.py --quick         # small sizes, a smoke test of the script
    .venv/bin/python bench/core.py --slstm --threads 1 --clock cpu   # only the sLSTM rows (a few minutes)

``--slstm`` runs only lstmkit.nn.SLSTM (4 heads; compiled, Python fused and reference paths, and the
compiled path with 1 head, whose recurrent matrix is dense) against torch.nn.LSTM of the same sizes, by
the same method, and the per-step recurrent product alone (batched over the heads vs one dense matrix
with zero off-diagonal blocks); it replaces the sLSTM section at the end of ``--out`` and leaves the
rest of the file as it is.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lstmkit.io import atomic_write_text
from lstmkit.nn import LSTM, SLSTM

VARIANTS = {
    "layer_norm": dict(layer_norm=True),
    "peephole": dict(peephole=True),
    "variational_dropout=0.25": dict(variational_dropout=0.25),
    "weight_drop=0.25": dict(weight_drop=0.25),
    "zoneout=0.1": dict(zoneout=0.1),
}


@dataclass
class Config:
    name: str
    batch: int
    steps: int
    inp: int
    hidden: int
    layers: int = 1
    bidirectional: bool = False


CONFIGS = [
    Config("B64 T100 I128 H256", 64, 100, 128, 256),
    Config("B32 T200 I256 H512 L2", 32, 200, 256, 512, 2),
    Config("B1 T1000 I64 H128", 1, 1000, 64, 128),
    Config("BiLSTM B32 T100 I100 H128", 32, 100, 100, 128, 1, True),
]
QUICK = [Config("B8 T20 I16 H32", 8, 20, 16, 32), Config("BiLSTM B8 T20 I16 H32", 8, 20, 16, 32, 1, True)]


def candidates(cfg: Config, with_reference_variants: bool) -> dict[str, torch.nn.Module]:
    """name -> module, all with the same weights as the torch.nn.LSTM baseline."""
    kw = dict(num_layers=cfg.layers, bidirectional=cfg.bidirectional)
    base = torch.nn.LSTM(cfg.inp, cfg.hidden, **kw)
    mods: dict[str, torch.nn.Module] = {"torch.nn.LSTM": base}
    entries = [("torch path", {}, "torch"), ("reference plain", {}, "reference"), ("fused plain", {}, "fused")]
    for vname, vkw in VARIANTS.items():
        entries.append((f"auto {vname}", vkw, "auto"))
        if with_reference_variants:
            entries.append((f"fused {vname}", vkw, "fused"))
            entries.append((f"reference {vname}", vkw, "reference"))
    for name, vkw, impl in entries:
        m = LSTM(cfg.inp, cfg.hidden, **kw, **vkw, impl=impl)
        m.load_state_dict(base.state_dict(), strict=False)
        mods[name] = m
    return mods


CLOCK = {"fn": time.perf_counter}  # --clock cpu: time.process_time


def run_once(mod: torch.nn.Module, x: torch.Tensor, train: bool) -> float:
    """Seconds (wall, or this process's CPU time with --clock cpu) for one inference pass or one
    forward+backward pass."""
    mod.train(train)
    gc.collect()  # the previous candidate's garbage is collected now, not inside this one's timing
    gc.disable()  # as timeit does
    try:
        t0 = CLOCK["fn"]()
        if train:
            out, _ = mod(x)
            out.sum().backward()
        else:
            with torch.no_grad():
                mod(x)
        return CLOCK["fn"]() - t0
    finally:
        gc.enable()


def slstm_candidates(cfg: Config, heads: int = 4) -> dict[str, torch.nn.Module]:
    """name -> module: torch.nn.LSTM and lstmkit.nn.SLSTM of the same sizes on each of its paths (the
    weights differ: the cells differ), and the compiled path with one head (R a dense (4H, H) matrix)."""
    kw = dict(num_layers=cfg.layers, bidirectional=cfg.bidirectional)
    mods: dict[str, torch.nn.Module] = {"torch.nn.LSTM": torch.nn.LSTM(cfg.inp, cfg.hidden, **kw)}
    for name, impl, k in (
        (f"SLSTM heads={heads} auto", "auto", heads),
        (f"SLSTM heads={heads} fused", "fused", heads),
        (f"SLSTM heads={heads} reference", "reference", heads),
        ("SLSTM heads=1 auto (dense R)", "auto", 1),
    ):
        mods[name] = SLSTM(cfg.inp, cfg.hidden, heads=k, impl=impl, **kw)
    return mods


def bench_config(cfg: Config, reps: int, with_reference_variants: bool, slstm: bool = False) -> list[dict]:
    torch.manual_seed(0)
    mods = slstm_candidates(cfg) if slstm else candidates(cfg, with_reference_variants)
    x = torch.randn(cfg.steps, cfg.batch, cfg.inp)
    x_train = x.clone().requires_grad_()
    times = {(n, t): [] for n in mods for t in (False, True)}
    for mod in mods.values():  # warm-up
        run_once(mod, x, False)
        run_once(mod, x_train, True)
    names = list(mods)
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]  # rotated: no candidate always first
        for train in (False, True):
            for name in order:
                mod, xx = mods[name], (x_train if train else x)
                run_once(mod, xx, train)  # untimed: the timed pass follows this module's own pass (see module doc)
                mod.zero_grad(set_to_none=True)
                times[(name, train)].append(run_once(mod, xx, train))
                mod.zero_grad(set_to_none=True)
    tokens = cfg.batch * cfg.steps
    med = {k: statistics.median(v) for k, v in times.items()}

    def ratio(name: str, train: bool) -> float:
        """Median over the repetitions of torch.nn.LSTM's time / this candidate's time in the same
        repetition: the machine's drift over the run cancels within a repetition."""
        base = times[("torch.nn.LSTM", train)]
        return statistics.median(b / t for b, t in zip(base, times[(name, train)]))

    path = {n: getattr(m, "last_path", "-") for n, m in mods.items()}
    return [
        dict(
            config=cfg.name,
            name=n,
            path=path[n] or "-",
            inf=tokens / med[(n, False)],
            inf_ratio=ratio(n, False),
            train=tokens / med[(n, True)],
            train_ratio=ratio(n, True),
        )
        for n in mods
    ]


def bench_torch_path(cfg: Config, pairs: int) -> dict:
    """The torch path against torch.nn.LSTM, with a control: ``pairs`` interleaved rounds per mode of
    torch.nn.LSTM, the torch path and a second torch.nn.LSTM with the same weights (the order
    rotating each round). The median and quartiles of the per-round time ratios torch.nn.LSTM / torch
    path and torch.nn.LSTM / its twin: the twin runs the very same code, so its ratio is how far this
    machine moves two identical candidates apart."""
    torch.manual_seed(0)
    kw = dict(num_layers=cfg.layers, bidirectional=cfg.bidirectional)
    base = torch.nn.LSTM(cfg.inp, cfg.hidden, **kw)
    ours = LSTM(cfg.inp, cfg.hidden, **kw, impl="torch")
    twin = torch.nn.LSTM(cfg.inp, cfg.hidden, **kw)
    ours.load_state_dict(base.state_dict()), twin.load_state_dict(base.state_dict())
    x = torch.randn(cfg.steps, cfg.batch, cfg.inp)
    x_train = x.clone().requires_grad_()
    res = {}
    for train in (False, True):
        xx = x_train if train else x
        mods = [base, ours, twin]
        for m in mods:
            run_once(m, xx, train)
        ratios: dict[str, list[float]] = {"ours": [], "twin": []}
        for k in range(pairs):
            order = mods[k % 3 :] + mods[: k % 3]
            t = {id(m): run_once(m, xx, train) for m in order}
            ratios["ours"].append(t[id(base)] / t[id(ours)])
            ratios["twin"].append(t[id(base)] / t[id(twin)])
            for m in mods:
                m.zero_grad(set_to_none=True)
        for who, r in ratios.items():
            q = statistics.quantiles(r, n=4)
            res[("train" if train else "inf") + ("" if who == "ours" else "_twin")] = (statistics.median(r), q[0], q[2])
    return dict(config=cfg.name, pairs=pairs, **res)


def us_per_call(fn, calls: int) -> float:
    """Wall-clock µs per call of ``fn`` over ``calls`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def bench_dispatch(cfg: Config, calls: int = 1000, reps: int = 9) -> dict:
    """What the torch path adds to torch.nn.LSTM's own call, in µs per pass: both modules with this
    configuration's layers and directions at a size where the kernel costs next to nothing (B1 T1
    I8 H8), ``calls`` passes per timing, interleaved; the median over ``reps`` of the difference.
    The two make the identical ``_VF.lstm`` call (and backward), so this difference is the torch
    path's whole cost, and dividing it by a real pass bounds the ratio more finely than timing
    whole passes on a noisy machine can."""
    kw = dict(num_layers=cfg.layers, bidirectional=cfg.bidirectional)
    torch.manual_seed(0)
    base, ours = torch.nn.LSTM(8, 8, **kw), LSTM(8, 8, **kw, impl="torch")
    ours.load_state_dict(base.state_dict())
    x = torch.randn(1, 1, 8)
    x_train = x.clone().requires_grad_()

    def one_pass(m: torch.nn.Module, train: bool) -> None:
        if train:
            m(x_train)[0].sum().backward()
        else:
            with torch.no_grad():
                m(x)

    res = {}
    for train in (False, True):
        diffs = []
        for rep in range(reps):
            t = {}
            for m in (base, ours) if rep % 2 == 0 else (ours, base):
                one_pass(m, train)  # warm
                t[id(m)] = us_per_call(lambda m=m, train=train: one_pass(m, train), calls)
            diffs.append(t[id(ours)] - t[id(base)])
        res["train" if train else "inf"] = statistics.median(diffs)
    return dict(config=cfg.name, **res)


def bench_step(reps: int, calls: int, threads: int) -> list[dict]:
    """Median µs per streaming step at B1, I256, H256 on ``threads`` threads, by the wall clock (a
    latency; process CPU time would add up the threads)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _bench_step(reps, calls, threads)
    finally:
        torch.set_num_threads(saved)


def _bench_step(reps: int, calls: int, threads: int) -> list[dict]:
    torch.manual_seed(0)
    batch, inp, hidden = 1, 256, 256
    ours = LSTM(inp, hidden).eval()
    ours_ln = LSTM(inp, hidden, layer_norm=True).eval()
    cell = torch.nn.LSTMCell(inp, hidden).eval()
    seq = torch.nn.LSTM(inp, hidden).eval()
    x = torch.randn(batch, inp)
    h, c = torch.zeros(batch, hidden), torch.zeros(batch, hidden)
    h3, c3 = h.unsqueeze(0), c.unsqueeze(0)
    # Each candidate runs as a streaming loop does: the state it returns is fed to its next call.
    w_cat = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)  # (4H, I + H)
    xh = torch.randn(inp + hidden)  # the floor's fixed input
    state = {"plain": (h3, c3), "ln": (h3, c3), "cell": (h, c), "seq": (h3, c3)}

    def run(key, fn):
        def call():
            state[key] = fn(state[key])

        return call

    fns = {
        "lstmkit LSTM.step (plain)": run("plain", lambda s: ours.step(x, s)[1]),
        "lstmkit LSTM.step (layer_norm)": run("ln", lambda s: ours_ln.step(x, s)[1]),
        "torch.nn.LSTMCell": run("cell", lambda s: cell(x, s)),
        "torch.nn.LSTM, one step per call": run("seq", lambda s: seq(x.unsqueeze(0), s)[1]),
        # Not a step: the floor any step has on this machine, one pass over the 2 MB of W_ih and W_hh
        # (a single matrix-vector product over both, nothing else).
        "floor: one matrix-vector product over W_ih and W_hh side by side": lambda: torch.mv(w_cat, xh),
    }
    times = {k: [] for k in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn()
        for _ in range(reps):
            for name, fn in fns.items():
                times[name].append(us_per_call(fn, calls))
    base = statistics.median(times["torch.nn.LSTMCell"])
    return [
        dict(name=k, threads=threads, us=statistics.median(v), ratio=statistics.median(v) / base, best=min(v))
        for k, v in times.items()
    ]


def bench_recurrent_product(cfg: Config, heads: int = 4, reps: int = 9, calls: int = 100) -> dict:
    """µs per step of the sLSTM's recurrent product h_{t-1} R at this configuration's B and H: one batched
    matmul over the heads (h viewed (K, B, H/K), strided, times the (K, H/K, 4H/K) blocks: what the fast
    paths run) against one dense (B, H) x (H, 4H) matmul with the off-diagonal blocks zero; forward
    (h R) and backward (dA Rᵀ) products, interleaved, median over ``reps``."""
    torch.manual_seed(0)
    b, h, k = cfg.batch, cfg.hidden, heads
    d = h // k
    x, blocks, dense = torch.randn(b, h), torch.randn(k, d, 4 * d), torch.zeros(h, 4 * h)
    da, da_dense = torch.randn(b, k, 4 * d), torch.randn(b, 4 * h)
    out, out_dense = torch.empty(k, b, 4 * d), torch.empty(b, 4 * h)
    back, back_dense = torch.empty(k, b, d), torch.empty(b, h)
    blocks_t, dense_t = blocks.transpose(1, 2), dense.t()
    fns = {
        "bmm fwd": lambda: torch.bmm(x.view(b, k, d).transpose(0, 1), blocks, out=out),
        "dense fwd": lambda: torch.mm(x, dense, out=out_dense),
        "bmm bwd": lambda: torch.bmm(da.transpose(0, 1), blocks_t, out=back),
        "dense bwd": lambda: torch.mm(da_dense, dense_t, out=back_dense),
    }
    times: dict[str, list[float]] = {n: [] for n in fns}
    for fn in fns.values():
        fn()
    for _ in range(reps):
        for n, fn in fns.items():
            times[n].append(us_per_call(fn, calls))
    return dict(config=cfg.name, heads=k, **{n: statistics.median(v) for n, v in times.items()})


def speed_tables(rows: list[dict], heading: str) -> list[str]:
    """One markdown table of speeds and ratios per configuration, each under ``heading + config``."""
    lines: list[str] = []
    current = None
    for r in rows:
        if r["config"] != current:
            current = r["config"]
            lines += [
                "",
                f"{heading}{current}",
                "",
                "| candidate | path | inference tok/s | ratio | training tok/s | ratio |",
                "|---|---|---:|---:|---:|---:|",
            ]
        lines.append(
            f"| {r['name']} | {r['path']} | {r['inf']:,.0f} | {r['inf_ratio']:.2f} | {r['train']:,.0f} | {r['train_ratio']:.2f} |"
        )
    return lines


def render_slstm(rows: list[dict], product_rows: list[dict], meta: dict) -> str:
    """The sLSTM section: its own command, date and load, the table per configuration, the products."""
    lines = [
        SLSTM_HEADING,
        "",
        "Written by `bench/core.py --slstm` (" + meta["command"] + "): lstmkit.nn.SLSTM (xLSTM's sLSTM) against "
        "torch.nn.LSTM of the same sizes, by the method above (interleaved, rotated, each timed pass after an "
        "untimed pass of the same module; ratio = torch.nn.LSTM's time / the candidate's, median over the "
        "repetitions). The cells differ (weights cannot be shared), the sizes do not. `heads=1`: the recurrent "
        "matrix is one dense (4H, H) block, the cost of running the product without the block structure.",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in meta.items() if k != "command"]
    lines += speed_tables(rows, "### sLSTM: ")
    lines += [
        "",
        "### sLSTM: the recurrent product per step, batched over the heads vs dense with zero blocks",
        "",
        "µs per call (median), one step's h_{t-1} R (forward) and dA Rᵀ (backward) at the configuration's B "
        "and H, 4 heads: `bmm` is what the fused and compiled paths run.",
        "",
        "| config | bmm fwd | dense fwd | bmm bwd | dense bwd |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['config']} | {r['bmm fwd']:.1f} | {r['dense fwd']:.1f} | {r['bmm bwd']:.1f} | {r['dense bwd']:.1f} |"
        for r in product_rows
    ]
    return "\n".join(lines) + "\n"


SLSTM_HEADING = "## sLSTM (lstmkit.nn.SLSTM) against torch.nn.LSTM"


def replace_slstm_section(text: str, section: str) -> str:
    """``text`` with its sLSTM section (from its heading to the end) replaced by ``section``."""
    head = text.split("\n" + SLSTM_HEADING, 1)[0].rstrip("\n")
    return head + "\n\n" + section


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def render(
    rows: list[dict],
    step_rows: list[dict],
    meta: dict,
    pair_rows: list[dict] | None = None,
    dispatch_rows: list[dict] | None = None,
) -> str:
    lines = ["# lstmkit core benchmark", "", "Written by `bench/core.py` (" + meta["command"] + ").", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items() if k != "command"]
    lines += [
        "",
        "Tokens/s = B*T / median seconds per pass; ratio = torch.nn.LSTM's time / the candidate's time "
        "within each repetition, median over the repetitions (> 1 is faster). `path` is `last_path` after "
        "the run.",
        "",
    ]
    lines += speed_tables(rows, "## ")
    if pair_rows:
        lines += [
            "",
            "## Torch path vs torch.nn.LSTM, paired, with a control",
            "",
            "Time ratio torch.nn.LSTM / candidate over interleaved rounds (> 1: the candidate is faster): "
            "median [quartiles]. The control is a second torch.nn.LSTM with the same weights: the same "
            "code, so its distance from 1 is the measurement's own.",
            "",
            "| config | rounds | inference: torch path | inference: control | training: torch path | "
            "training: control |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        cell = lambda v: f"{v[0]:.3f} [{v[1]:.2f}, {v[2]:.2f}]"  # noqa: E731
        lines += [
            f"| {r['config']} | {r['pairs']} | {cell(r['inf'])} | {cell(r['inf_twin'])} | {cell(r['train'])} | "
            f"{cell(r['train_twin'])} |"
            for r in pair_rows
        ]
    if dispatch_rows:
        lines += [
            "",
            "## Torch path: its cost over torch.nn.LSTM's own call",
            "",
            "µs the torch path adds per pass (median difference, both at B1 T1 I8 H8 with this configuration's "
            "layers and directions, where the kernel costs next to nothing), and the ratio it implies for a "
            "pass of this configuration (torch.nn.LSTM's median pass above / (that + the overhead)). A negative "
            "figure: the torch path's Python costs less than torch.nn.LSTM.forward's own checks.",
            "",
            "| config | inference: µs added | pass ms | implied ratio | training: µs added | pass ms | implied ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['config']} | {r['inf']:.1f} | {r['inf_pass_ms']:.1f} | {r['inf_bound']:.4f} | "
            f"{r['train']:.1f} | {r['train_pass_ms']:.1f} | {r['train_bound']:.4f} |"
            for r in dispatch_rows
        ]
    lines += [
        "",
        "## Streaming step latency (B1, I256, H256)",
        "",
        "Each candidate is called in a streaming loop (its returned state is its next input), under "
        "`torch.no_grad()` as generation runs; wall clock, on one thread and on all of them.",
        "",
        "| candidate | threads | median µs/step | best µs/step | vs torch.nn.LSTMCell |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['name']} | {r['threads']} | {r['us']:.1f} | {r['best']:.1f} | {r['ratio']:.2f} |" for r in step_rows
    ]
    return "\n".join(lines) + "\n"


def keep_freed_memory() -> str:
    """Stop glibc from returning freed buffers to the OS (and faulting them in again on the next pass).

    With glibc's adaptive thresholds a (T, B, 4H) buffer may come from a fresh mmap or a trimmed heap
    on one pass and from reused memory on the next, depending on everything allocated before: one
    process measured torch.nn.LSTM at 97 ms per training pass, then at 141 ms with 8,000 page faults
    per pass. Fixed thresholds take that out of every candidate's time alike."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        ok = False
    return "glibc, freed memory kept (M_MMAP_THRESHOLD = M_TRIM_THRESHOLD = 1 GiB)" if ok else "unchanged (no glibc)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per candidate (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument(
        "--pairs",
        type=int,
        default=11,
        help="interleaved rounds (torch.nn.LSTM, torch path, a second torch.nn.LSTM as control) for "
        "the torch path check, per config (0 skips it; default: 11)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes only, to check the script (default: off)")
    parser.add_argument(
        "--only",
        default="",
        help="run only the configurations whose name contains this text, e.g. BiLSTM (default: all; "
        "the step latency still runs)",
    )
    parser.add_argument(
        "--no-reference-variants",
        action="store_true",
        help="skip the variants on the reference path (default: run them on the first config)",
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, steadier when other jobs share the "
        "cores (use with --threads 1, where it equals the compute thread's time) (default: wall)",
    )
    parser.add_argument(
        "--malloc",
        choices=["keep", "default"],
        default="keep",
        help="keep: tell glibc malloc to keep freed memory (mallopt M_MMAP_THRESHOLD / "
        "M_TRIM_THRESHOLD 1 GiB) for every candidate alike, so no candidate pays page faults on "
        "fresh buffers; default: glibc's adaptive thresholds, whose state depends on what ran "
        "before and once moved torch.nn.LSTM's own time by 45%% (default: keep)",
    )
    parser.add_argument(
        "--slstm",
        action="store_true",
        help="run only the sLSTM rows (lstmkit.nn.SLSTM against torch.nn.LSTM, and the recurrent product) and "
        "replace the sLSTM section of --out, leaving the rest of it (default: off)",
    )
    parser.add_argument(
        "--out",
        default=str(Path(__file__).parent / "results" / "core.md"),
        help="markdown file to write (default: bench/results/core.md)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = keep_freed_memory() if args.malloc == "keep" else "glibc default (adaptive)"
    if args.clock == "cpu":
        CLOCK["fn"] = time.process_time
    start, load0 = time.time(), os.getloadavg()
    configs = [c for c in (QUICK if args.quick else CONFIGS) if args.only in c.name]
    if args.slstm:
        main_slstm(args, configs, start, load0, malloc)
        return
    rows = []
    for cfg in configs:  # reference variants: first config only
        rows += bench_config(cfg, args.reps, cfg is CONFIGS[0] and not args.no_reference_variants)
        print(f"done {cfg.name} ({time.time() - start:.0f} s)", flush=True)
    pair_rows = []
    if args.pairs:
        for cfg in configs:
            pair_rows.append(bench_torch_path(cfg, max(2, args.pairs)))  # quartiles need two
        print(f"done paired torch path ({time.time() - start:.0f} s)", flush=True)
    base_rows = {r["config"]: r for r in rows if r["name"] == "torch.nn.LSTM"}
    dispatch_rows = []
    for cfg in configs:
        d = bench_dispatch(cfg, calls=200 if args.quick else 1000)
        for mode in ("inf", "train"):
            pass_us = cfg.batch * cfg.steps / base_rows[cfg.name][mode] * 1e6  # torch.nn.LSTM's median pass
            d[f"{mode}_pass_ms"], d[f"{mode}_bound"] = pass_us / 1e3, pass_us / (pass_us + d[mode])
        dispatch_rows.append(d)
    step_rows = [
        row
        for n in sorted({1, os.cpu_count() or 1})
        for row in bench_step(reps=max(5, args.reps * 3), calls=50 if args.quick else 200, threads=n)
    ]
    meta = {
        "command": "python bench/core.py "
        + " ".join(
            a
            for a in (
                f"--reps {args.reps}",
                f"--pairs {args.pairs}",
                f"--threads {args.threads}" if args.threads else "",
                f"--clock {args.clock}",
                f"--malloc {args.malloc}",
                "--quick" if args.quick else "",
                f"--only {args.only}" if args.only else "",
                "--no-reference-variants" if args.no_reference_variants else "",
            )
            if a
        ),
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime(start)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "load average (1 min) at start / end": f"{load0[0]:.1f} / {os.getloadavg()[0]:.1f}",
        "load average (1 / 5 / 15 min) at end": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
        "wall time": f"{time.time() - start:.0f} s",
        "clock": "process CPU time" if args.clock == "cpu" else "wall (perf_counter)",
        "malloc": malloc,
    }
    text = render(rows, step_rows, meta, pair_rows, dispatch_rows)
    out = Path(args.out)
    if out.is_file() and "\n" + SLSTM_HEADING in out.read_text():  # the sLSTM section (--slstm) is kept
        text = replace_slstm_section(text, SLSTM_HEADING + out.read_text().split("\n" + SLSTM_HEADING, 1)[1])
    atomic_write_text(out, text)
    print(text)


def main_slstm(args: argparse.Namespace, configs: list[Config], start: float, load0: tuple, malloc: str) -> None:
    """``--slstm``: the sLSTM rows only, written into the sLSTM section of ``--out``."""
    rows, product_rows = [], []
    for cfg in configs:
        rows += bench_config(cfg, args.reps, False, slstm=True)
        print(f"done sLSTM {cfg.name} ({time.time() - start:.0f} s)", flush=True)
    for cfg in configs:
        product_rows.append(bench_recurrent_product(cfg, calls=20 if args.quick else 100))
    options = [f"--reps {args.reps}", f"--threads {args.threads}" if args.threads else "", f"--clock {args.clock}"]
    options += [f"--malloc {args.malloc}", "--quick" if args.quick else "", f"--only {args.only}" if args.only else ""]
    meta = {
        "command": "python bench/core.py --slstm " + " ".join(a for a in options if a),
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime(start)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "load average (1 min) at start / end": f"{load0[0]:.1f} / {os.getloadavg()[0]:.1f}",
        "wall time": f"{time.time() - start:.0f} s",
        "clock": "process CPU time" if args.clock == "cpu" else "wall (perf_counter)",
        "malloc": malloc,
    }
    section = render_slstm(rows, product_rows, meta)
    out = Path(args.out)
    text = replace_slstm_section(out.read_text(), section) if out.is_file() else section
    atomic_write_text(out, text)
    print(section)


if __name__ == "__main__":
    main()
