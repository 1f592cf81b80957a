"""Benchmark of the text room (issue 5), run by hand: ``python bench/text.py [--quick] [--only ...]``.

Four parts, each compared in the same run with a baseline, written to ``bench/results/text.md``:

* ``sst2``: SST-2 (GLUE ``train.tsv`` → ``dev.tsv``) accuracy of a BiLSTM without pretrained vectors.
  Baseline in the same run: the majority class. Anchors: LSTM 84.9–86.3 % with GloVe (Tai et al. 2015);
  required ≥ 84 % without pretrained vectors.
* ``char``: tiny Shakespeare, split 0.9/0.1, validation nats/char after ``--char-minutes`` (10) of CPU
  training. Baseline: the unigram character entropy of the validation text. Anchor: nanoGPT's CPU
  configuration, 1.88 in ~3 minutes; required ≤ 1.75, goal ≤ 1.55.
* ``word``: WikiText-2 test perplexity after ``--word-minutes`` (30) of CPU training, and tokens/s, for
  lstmkit's configuration and for pytorch/examples' word_language_model configuration (2 layers × 200,
  dropout 0.2, full softmax, SGD lr 20, clip 0.25, BPTT 35, batch 20) run in lstmkit at the same budget.
  Anchor: AWD-LSTM 65.8 test (GPU, 750 epochs).
* ``generate``: tokens/s of ``LMPredictor.generate`` (one ``step`` per token) with the char model, against
  re-running the whole prefix for each token.

``--quick`` runs every part on a small budget (≈1–2 minutes each) only to check the script works: its
numbers are not the benchmark. Data: ``../shared/data/{sst2,tinyshakespeare,wikitext-2}``.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "text.md"


@dataclass
class Section:
    title: str
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class StepCounter:
    """Trainer hook: counts optimisation steps (for tokens/s)."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self, trainer) -> None:
        self.steps += 1


# ============================================================================================ SST-2
def bench_sst2(args, work: Path) -> Section:
    import lstmkit
    from lstmkit.data.labelled import read_labelled

    train_path, dev_path = DATA / "sst2" / "train.tsv", DATA / "sst2" / "dev.tsv"
    data: Path | list = train_path
    if args.quick:  # a slice of the training file
        data = [(r.text, r.label) for r in read_labelled(train_path)[:8000]]
    minutes = 1.5 if args.quick else args.sst2_minutes
    settings = dict(
        tokenizer=args.sst2_tokenizer,
        lowercase=True,
        min_freq=1,
        bpe_vocab_size=args.sst2_bpe_vocab,
        embed_size=300,
        hidden_size=args.sst2_hidden,
        bidirectional=True,
        pooling=args.sst2_pooling,
        dropout=0.5,
        variational_dropout=args.sst2_variational,
        word_dropout=args.sst2_word_dropout,
        epochs=2 if args.quick else args.sst2_epochs,
        batch_size=64,
        lr=args.sst2_lr,
        patience=3,
        monitor="accuracy",
        monitor_mode="max",
        max_time=minutes * 60,
        seed=args.seed,
        schedule=args.sst2_schedule,
        device="cpu",
    )
    t0 = time.monotonic()
    res = lstmkit.train("classify", data, dev_path, work / "sst2", quiet=True, **settings)
    seconds = time.monotonic() - t0
    cfg = res.predictor.config
    dev = read_labelled(dev_path)
    majority = max(collections.Counter(r.label for r in dev).values()) / len(dev)
    acc = res.metrics["valid"]["accuracy"]
    s = Section("SST-2 sentiment (GLUE train.tsv → dev.tsv accuracy)")
    s.rows = [("model", "dev accuracy", "vs majority class", "wall time", "required / anchor")]
    s.rows.append(
        (
            f"BiLSTM {cfg.lstm.hidden_size}×2, {cfg.pooling} pool, no pretrained vectors",
            f"{acc:.2%}",
            f"×{acc / majority:.3f}",
            f"{seconds:.0f} s",
            "≥ 84% required; 84.9–86.3% anchor (GloVe)",
        )
    )
    s.rows.append(("majority class (same dev set)", f"{majority:.2%}", "×1.000", "—", ""))
    s.notes.append(
        f"config: {cfg.tokenizer} tokens"
        + (f" ({cfg.bpe_vocab_size})" if cfg.tokenizer == "bpe" else "")
        + f", lowercase, embed 300, hidden {cfg.lstm.hidden_size}, dropout 0.5, "
        f"variational dropout {cfg.lstm.variational_dropout}, word dropout {cfg.word_dropout}, "
        f"AdamW lr {cfg.train.lr:g}, "
        f"batch 64, schedule {cfg.train.schedule}, budget {minutes:g} min, epochs ≤ {cfg.train.epochs}, seed {args.seed}"
        + (", **quick: first 8000 training rows**" if args.quick else "")
    )
    hist = work / "sst2" / "history.csv"
    if hist.is_file():
        import pandas as pd

        accs = pd.read_csv(hist)["accuracy"].tolist()
        s.notes.append(
            "dev accuracy per epoch: "
            + ", ".join(f"{a:.2%}" for a in accs)
            + f" (kept: epoch {accs.index(max(accs)) + 1})"
        )
    return s


# ============================================================================================ char LM
def bench_char(args, work: Path):
    import lstmkit
    from lstmkit.tasks.lm.data import read_stream, split_stream

    path = DATA / "tinyshakespeare" / "input.txt"
    minutes = 1.5 if args.quick else args.char_minutes
    hidden = 256 if args.quick else args.char_hidden
    # locked dropout 0.1 on the top layer's output only, as in the recorded runs (--dropout-out)
    settings = dict(
        level="char",
        bptt=128,
        split=[0.9, 0.1],
        eval_batch_size=16,
        embed_size=64,
        hidden_size=hidden,
        num_layers=2,
        dropout_in=0.0,
        dropout_hidden=0.0,
        dropout_out=0.1,
        softmax="full",
        epochs=1000,
        batch_size=32,
        lr=3e-3,
        clip_grad=1.0,
        patience=0,
        max_time=minutes * 60,
        seed=args.seed,
        device="cpu",
    )
    steps = StepCounter()
    t0 = time.monotonic()
    res = lstmkit.train("lm", path, None, work / "char", quiet=True, callbacks=[("on_batch_end", steps)], **settings)
    seconds = time.monotonic() - t0
    cfg = res.predictor.config
    valid = split_stream(read_stream(path, cfg), cfg.split, str(path))[1]
    counts = collections.Counter(valid)
    unigram = -sum(c / len(valid) * math.log(c / len(valid)) for c in counts.values())
    nats = res.metrics["valid"]["nats_per_char"]
    tok_s = steps.steps * cfg.train.batch_size * cfg.bptt / seconds
    s = Section(f"Character LM, tiny Shakespeare (0.9/0.1 split), {minutes:g} min of CPU training")
    s.rows = [("model", "valid nats/char", "bits/char", "vs unigram", "train tokens/s", "required / anchor")]
    s.rows.append(
        (
            f"LSTM 2×{cfg.lstm.hidden_size}",
            f"{nats:.3f}",
            f"{nats / math.log(2):.3f}",
            f"×{nats / unigram:.3f}",
            f"{tok_s:,.0f}",
            "≤ 1.75 required, ≤ 1.55 goal; nanoGPT CPU 1.88",
        )
    )
    s.rows.append(
        (
            "unigram character distribution (same split)",
            f"{unigram:.3f}",
            f"{unigram / math.log(2):.3f}",
            "×1.000",
            "—",
            "",
        )
    )
    s.notes.append(
        f"config: embed 64, 2 layers × {cfg.lstm.hidden_size}, output dropout 0.1, BPTT 128, batch 32, AdamW "
        f"lr 3e-3, clip 1.0; {steps.steps} steps in {seconds:.0f} s (incl. validation); seed {args.seed}"
    )
    return s, res.predictor


# ============================================================================================ word LM
def _wikitext(args, work: Path) -> Path:
    """The WikiText-2 folder; with --quick, copies of its first lines (train 4000, valid/test 300)."""
    d = DATA / "wikitext-2"
    if not args.quick:
        return d
    q = work / "wikitext-2-quick"
    q.mkdir(exist_ok=True)
    for name, n in (("train.txt", 4000), ("valid.txt", 300), ("test.txt", 300)):
        lines = (d / name).read_text(encoding="utf-8").splitlines(keepends=True)[:n]
        (q / name).write_text("".join(lines), encoding="utf-8")
    return q


def _word_run(args, work: Path, name: str, settings: dict, minutes: float):
    import lstmkit

    d = _wikitext(args, work)
    rows, bptt = 20, 35
    steps = StepCounter()
    t0 = time.monotonic()
    res = lstmkit.train(
        "lm",
        d / "train.txt",
        d / "valid.txt",
        work / name,
        test=d / "test.txt",
        quiet=True,
        callbacks=[("on_batch_end", steps)],
        level="word",
        bptt=bptt,
        eval_batch_size=10,
        epochs=1000,
        batch_size=rows,
        patience=0,
        max_time=minutes * 60,
        seed=args.seed,
        device="cpu",
        **settings,
    )
    seconds = time.monotonic() - t0
    return res.metrics, steps.steps * rows * bptt / seconds, seconds


def bench_word(args, work: Path) -> Section:
    minutes = 1.5 if args.quick else args.word_minutes
    hidden = 256 if args.quick else args.word_hidden
    ours = dict(
        embed_size=400,
        hidden_size=hidden,
        num_layers=2,
        softmax="adaptive",
        dropout_out=0.3,
        dropout_in=0.2,
        dropout_hidden=0.2,
        dropout_emb=0.05,
    )
    # as recorded: locked dropout 0.2 on the top layer's output only (--dropout-out; none on the input
    # or between the layers)
    examples = dict(
        embed_size=200,
        hidden_size=200,
        num_layers=2,
        softmax="full",
        dropout_in=0.0,
        dropout_hidden=0.0,
        dropout_out=0.2,
    )
    runs = [
        (
            f"lstmkit: 2×{hidden}, adaptive softmax, AWD dropouts, AdamW",
            {**ours, "lr": 2e-3, "clip_grad": 0.25, "schedule": "plateau"},
        ),
        (
            "pytorch/examples config: 2×200, full softmax, SGD lr 20",
            {**examples, "lr": 20.0, "optimizer": "sgd", "clip_grad": 0.25, "schedule": "plateau"},
        ),
    ]
    results = []
    for i, (label, settings) in enumerate(runs):
        results.append((label, *_word_run(args, work, f"word{i}", settings, minutes)))
    base_ppl = results[1][1]["test"]["perplexity"]
    s = Section(f"Word LM, WikiText-2, {minutes:g} min of CPU training each")
    s.rows = [("model", "valid ppl", "test ppl", "test ppl vs pytorch/examples config", "train tokens/s")]
    for label, m, tok_s, _ in results:
        s.rows.append(
            (
                label,
                f"{m['valid']['perplexity']:.1f}",
                f"{m['test']['perplexity']:.1f}",
                f"×{m['test']['perplexity'] / base_ppl:.3f}",
                f"{tok_s:,.0f}",
            )
        )
    if args.quick:
        s.notes.append("**quick: first 4000/300/300 lines of train/valid/test, hidden 256**")
    s.notes.append(
        "anchor: AWD-LSTM 65.8 test perplexity (GPU, 750 epochs). Both runs: BPTT 35, batch 20, "
        f"'plateau' LR halving, same budget, seed {args.seed}; tokens/s counts training tokens over "
        "the whole run (validation included)."
    )
    return s


# ============================================================================================ generation
@torch.no_grad()
def naive_generate(pred, prompt: str, length: int, seed: int) -> list[str]:
    """The slow way: re-run the whole prefix through the model for every new token (greedy-free sampling)."""
    from lstmkit.tasks.lm.sampling import sample_next

    gen = torch.Generator().manual_seed(seed)
    ids = pred.start_ids(prompt)
    out = []
    for _ in range(length):
        h = pred.model(torch.tensor([ids]), None).hidden[:, -1]  # (1, H): whole prefix again
        nxt = sample_next(pred.model.log_probs(h)[0], 1.0, 0, 1.0, gen)
        ids.append(nxt)
        out.append(pred.vocab.tokens[nxt])
    return out


def bench_generate(args, pred) -> Section:
    prompt = "ROMEO:\nBut soft, what light through yonder window breaks?\n" * 2
    n = 100 if args.quick else args.gen_tokens
    t0 = time.perf_counter()
    fast = list(pred.generate(prompt, n, seed=1))
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = naive_generate(pred, prompt, n, seed=1)
    t_slow = time.perf_counter() - t0
    s = Section(f"Generation with the char model ({n} tokens after a {len(prompt)}-character prompt)")
    s.rows = [("method", "tokens/s", "speed-up")]
    s.rows.append(("lstmkit lm generate: one LSTM step per token", f"{n / t_fast:,.0f}", f"×{t_slow / t_fast:.1f}"))
    s.rows.append(("re-run the whole prefix per token", f"{n / t_slow:,.0f}", "×1.0"))
    s.notes.append(f"same sampler, same seed: the two produce the same text: {fast == slow}")
    return s


# ============================================================================================ report
def render(sections: list[Section], args, started: str, total: float, load: tuple[float, float]) -> str:
    head = ["# Text benchmark (bench/text.py)", ""]
    if args.quick:
        head += [
            "**Quick check only (`--quick`, ~1.5 min per part on a shared machine): these numbers show the "
            "script runs and the models learn; they are NOT the benchmark. The full runs (SST-2 8 epochs, "
            "char LM 10 min, WikiText-2 2×30 min) are PENDING.**",
            "",
        ]
    head += [
        f"Run {started} UTC, {total / 60:.1f} min in all; command: `python bench/text.py {' '.join(sys.argv[1:])}`",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"1-min load average {load[0]:.1f} at the start, {load[1]:.1f} at the end (other jobs share "
        "the CPUs when it exceeds the thread count: times and tokens/s are then understated).",
        "",
    ]
    body = []
    for s in sections:
        body += [f"## {s.title}", "", "| " + " | ".join(s.rows[0]) + " |", "|" + "---|" * len(s.rows[0])]
        body += ["| " + " | ".join(r) + " |" for r in s.rows[1:]]
        body += [""] + [f"- {n}" for n in s.notes] + [""]
    return "\n".join(head + body)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small budgets, to check the script (not the benchmark)")
    p.add_argument("--only", default="sst2,char,word,generate", help="comma-separated parts to run")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--sst2-minutes", type=float, default=30.0, help="SST-2 time budget")
    p.add_argument("--sst2-hidden", type=int, default=128, help="SST-2 BiLSTM units per direction")
    p.add_argument("--sst2-lr", type=float, default=2e-3, help="SST-2 AdamW learning rate")
    p.add_argument("--sst2-epochs", type=int, default=8, help="SST-2 maximum epochs")
    p.add_argument("--sst2-schedule", default="none", choices=["none", "cosine", "plateau"], help="SST-2 LR schedule")
    p.add_argument("--sst2-word-dropout", type=float, default=0.1, help="SST-2 word dropout (tokens -> <unk>)")
    p.add_argument("--sst2-tokenizer", default="bpe", choices=["whitespace", "word", "bpe"], help="SST-2 tokenizer")
    p.add_argument("--sst2-bpe-vocab", type=int, default=8000, help="SST-2 BPE vocabulary size")
    p.add_argument("--sst2-pooling", default="max", choices=["last", "max", "mean", "attention"], help="SST-2 pooling")
    p.add_argument(
        "--sst2-variational", type=float, default=0.25, help="SST-2 variational (locked) dropout in the LSTM"
    )
    p.add_argument("--char-minutes", type=float, default=10.0, help="char LM time budget")
    p.add_argument("--char-hidden", type=int, default=256, help="char LM hidden size")
    p.add_argument("--word-minutes", type=float, default=30.0, help="time budget of each word LM run")
    p.add_argument("--word-hidden", type=int, default=400, help="lstmkit word LM hidden size")
    p.add_argument("--gen-tokens", type=int, default=500, help="tokens generated in the generation part")
    p.add_argument("--out", default=str(RESULTS), help="markdown file written")
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"data folder {DATA} not found")
    torch.set_num_threads(args.threads)
    parts = args.only.split(",")
    started, t0 = time.strftime("%Y-%m-%d %H:%M", time.gmtime()), time.monotonic()
    load0 = os.getloadavg()[0]
    sections: list[Section] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "sst2" in parts:
            sections.append(bench_sst2(args, work))
        if "char" in parts or "generate" in parts:
            char, pred = bench_char(args, work)
            if "char" in parts:
                sections.append(char)
            if "generate" in parts:
                sections.append(bench_generate(args, pred))
        if "word" in parts:
            sections.append(bench_word(args, work))
    text = render(sections, args, started, time.monotonic() - t0, (load0, os.getloadavg()[0]))
    from lstmkit.io import atomic_write_text

    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
