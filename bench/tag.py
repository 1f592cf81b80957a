"""Benchmark of the tag room (issue 6), run by hand: ``python bench/tag.py [--quick] [--parts ner,pos]``.

Parts, each with a baseline computed in the same run, written to ``bench/results/tag.md``:

* ``ner``: CoNLL-2003 English (``train.txt`` -> ``valid.txt``), lstmkit's BiLSTM-CRF with its defaults
  (random word embeddings, char CNN, casing features, IOBES, CRF) under a CPU training budget
  (``--max-time``, default 1800 s). Reports dev entity F1 (seqeval, conlleval rules), training time,
  training sentences/s (optimisation steps only, validation excluded) and prediction sentences/s.
  Baseline in the same run: each word's most frequent training tag. With ``--flair-python PY`` (a
  Python with flair installed, a separate environment) also flair's SequenceTagger (BiLSTM-CRF,
  hidden 256, one-hot word + character embeddings, SGD lr 0.1, batch 32) on the same data for
  ``--flair-epochs`` epochs: F1 and training sentences/s, and lstmkit's ratios to them.
  Anchors: BiLSTM-CRF random embeddings 83.6-84.3 test F1 (Lample 2016, Huang 2015); pretrained +
  chars 90.9 test (Lample 2016). Required: dev F1 >= 88 within 30 min of CPU training.
* ``pos``: UD English EWT UPOS (train -> dev), same tagger (no CRF constraints: plain labels), dev
  token accuracy. Baseline: most frequent tag per word. Anchors: Plank et al. 2016 94.6 (UD 1.3),
  Stanza 95.4. Required >= 94.5.

``--quick`` uses 2,000 training and 500 dev sentences and a 90 s budget per part: it checks that the
script works, its numbers are not the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "tag.md"
NER_TRAIN, NER_DEV = DATA / "conll2003" / "train.txt", DATA / "conll2003" / "valid.txt"
POS_TRAIN = DATA / "ud_english_ewt" / "en_ewt-ud-train.conllu"
POS_DEV = DATA / "ud_english_ewt" / "en_ewt-ud-dev.conllu"

FLAIR_SCRIPT = r"""
import json, sys, time
from flair.data import Dictionary
from flair.datasets import ColumnCorpus
from flair.embeddings import CharacterEmbeddings, OneHotEmbeddings, StackedEmbeddings
from flair.models import SequenceTagger
from flair.trainers import ModelTrainer
folder, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
corpus = ColumnCorpus(folder, {0: "text", 3: "ner"}, train_file="train.txt", dev_file="valid.txt",
                      test_file="valid.txt")
labels = corpus.make_label_dictionary("ner", add_unk=False)
chars = Dictionary()  # flair's default character dictionary is a download; build it from the data
for sentence in corpus.train:
    for token in sentence:
        for ch in token.text:
            chars.add_item(ch)
emb = StackedEmbeddings([OneHotEmbeddings.from_corpus(corpus), CharacterEmbeddings(path_to_char_dict=chars)])
tagger = SequenceTagger(hidden_size=256, embeddings=emb, tag_dictionary=labels, tag_type="ner", use_crf=True)
t0 = time.time()
ModelTrainer(tagger, corpus).train(out, learning_rate=0.1, mini_batch_size=32, max_epochs=epochs)
seconds = time.time() - t0
res = tagger.evaluate(corpus.dev, gold_label_type="ner", mini_batch_size=64)
print(json.dumps({"f1": res.main_score, "train_seconds": seconds, "epochs": epochs,
                  "train_sentences": len(corpus.train)}))
"""


class TrainClock:
    """Trainer callbacks: time spent in optimisation steps only (validation and checkpoints excluded)."""

    def __init__(self, batch_size: int, n_train: int) -> None:
        self.batch_size, self.n_train = batch_size, n_train
        self.seconds, self.sentences = 0.0, 0
        self._t0 = self._last = 0.0
        self._steps = 0

    def start(self, trainer) -> None:
        self._t0 = self._last = time.perf_counter()
        self._steps = 0

    def batch(self, trainer) -> None:
        self._last = time.perf_counter()
        self._steps += 1

    def end(self, trainer) -> None:
        self.seconds += self._last - self._t0
        self.sentences += self.n_train
        self._t0 = self._last = time.perf_counter()
        self._steps = 0

    def finish(self, trainer) -> None:  # a partial epoch cut by the time budget
        if self._steps:
            self.seconds += self._last - self._t0
            self.sentences += min(self.n_train, self._steps * self.batch_size)
            self._steps = 0

    def callbacks(self):
        return [
            ("on_epoch_start", self.start),
            ("on_batch_end", self.batch),
            ("on_epoch_end", self.end),
            ("on_train_end", self.finish),
        ]


def most_frequent_tag_baseline(train, dev, scheme: str) -> dict:
    """Each dev word gets its most frequent training tag (unknown words: the most frequent tag)."""
    from lstmkit.tasks.tag.metrics import tag_metrics

    counts: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for s in train:
        for tok, tag in zip(s.tokens, s.tags):
            counts[tok][tag] += 1
            overall[tag] += 1
    default = overall.most_common(1)[0][0]
    pred = [[counts[t].most_common(1)[0][0] if t in counts else default for t in s.tokens] for s in dev]
    return tag_metrics([s.tags for s in dev], pred, scheme)


def run_lstmkit(train_path: Path, dev_path: Path, fmt: str, args, work: Path) -> dict:
    import lstmkit
    from lstmkit.data.conll import read_sentences

    train_s = read_sentences(train_path, fmt)
    dev_s = read_sentences(dev_path, fmt)
    if args.quick:
        train_s, dev_s = train_s[:2000], dev_s[:500]
    clock = TrainClock(args.batch_size, len(train_s))
    t0 = time.perf_counter()
    result = lstmkit.train(
        "tag",
        train_s,
        dev_s,
        out=work,
        overwrite=True,
        quiet=not args.verbose,
        callbacks=clock.callbacks(),
        format=fmt,
        char_encoder=args.char_encoder,
        hidden_size=args.hidden_size,
        epochs=args.epochs,
        max_time=args.max_time,
        seed=args.seed,
        device="cpu",
        batch_size=args.batch_size,
        lr=args.lr,
    )
    total = time.perf_counter() - t0
    t1 = time.perf_counter()
    result.predictor.predict([s.tokens for s in dev_s])
    predict_s = len(dev_s) / (time.perf_counter() - t1)
    baseline = most_frequent_tag_baseline(train_s, dev_s, result.predictor.scheme)
    return {
        "metrics": result.metrics,  # {"training": best epoch row, "valid": full dev evaluation}
        "baseline": baseline,
        "train_total_s": total,
        "train_step_s": clock.seconds,
        "train_sent_per_s": clock.sentences / max(clock.seconds, 1e-9),
        "predict_sent_per_s": predict_s,
        "n_train": len(train_s),
        "n_dev": len(dev_s),
    }


def run_flair(args, work: Path) -> dict | None:
    if not args.flair_python:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for src, name in ((NER_TRAIN, "train.txt"), (NER_DEV, "valid.txt")):
            lines = src.read_text(encoding="utf-8").split("\n")
            if args.quick:  # the same subsets as lstmkit's quick run
                lines = _first_sentences(lines, 2000 if name == "train.txt" else 500)
            (folder / name).write_text("\n".join(lines), encoding="utf-8")
        script = folder / "flair_run.py"
        script.write_text(FLAIR_SCRIPT, encoding="utf-8")
        proc = subprocess.run(
            [args.flair_python, str(script), str(folder), str(work / "flair"), str(args.flair_epochs)],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        return {"error": tail[0]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["train_sent_per_s"] = res["train_sentences"] * res["epochs"] / res["train_seconds"]
    return res


def _first_sentences(lines: list[str], n: int) -> list[str]:
    out, count = [], 0
    for line in lines:
        out.append(line)
        if not line.strip() and out[-2:-1] and out[-2].strip() and not out[-2].startswith("-DOCSTART-"):
            count += 1
            if count >= n:
                break
    return out


def _dev(r: dict) -> dict:
    """The dev metrics of a part's result (results saved before the task contract are flat)."""
    return r["metrics"].get("valid", r["metrics"])


def _row(name: str, r: dict, key: str) -> str:
    m, t = _dev(r), r["metrics"].get("training", r["metrics"])
    return (
        f"| {name} | {100 * m[key]:.2f} | {100 * r['baseline'][key]:.2f} | {t.get('best_epoch')} / "
        f"{t.get('epochs_run')} ({t.get('stopped')}) | {r['train_total_s']:.0f} | {r['train_sent_per_s']:.0f} | "
        f"{r['predict_sent_per_s']:.0f} |"
    )


def write_results(args, parts: dict) -> str:
    lines = ["# lstmkit tag benchmark (bench/tag.py)", ""]
    kind = (
        "QUICK CHECK (2,000 train / 500 dev sentences, 90 s budget): not the benchmark"
        if args.quick
        else f"full run, training budget {args.max_time:.0f} s"
    )
    lines += [
        f"Run: `{' '.join(sys.argv)}` — {kind}.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; device cpu.",
        "",
        "| part | dev score (%) | most-frequent-tag baseline (%) | best epoch / epochs | train wall s "
        "| train sent/s | predict sent/s |",
        "|---|---|---|---|---|---|---|",
    ]
    if "ner" in parts:
        lines.append(_row("CoNLL-2003 NER, entity F1 (micro)", parts["ner"], "f1"))
    if "pos" in parts:
        lines.append(_row("UD EWT UPOS, token accuracy", parts["pos"], "accuracy"))
    lines.append("")
    for name, r in parts.items():
        if r and r.get("earlier"):
            lines.append(
                f"- {name}: from the earlier run `bench/tag.py {r.get('run', '?')}` ({r.get('date', '?')}), "
                "kept in the work folder."
            )
    flair = parts.get("flair")
    if flair is None:
        lines.append("flair SequenceTagger: not run in this run (no `--flair-python`); no ratios.")
    elif "error" in flair:
        lines.append(f"flair SequenceTagger: failed: {flair['error']}")
    elif "ner" in parts:
        ner = parts["ner"]
        lines += [
            f"flair SequenceTagger ({flair['epochs']} epochs): dev F1 {100 * flair['f1']:.2f}, "
            f"{flair['train_sent_per_s']:.0f} train sent/s (validation included).",
            f"lstmkit / flair: F1 ratio {_dev(ner)['f1'] / flair['f1']:.3f}, training throughput "
            f"ratio {ner['train_sent_per_s'] / flair['train_sent_per_s']:.2f}.",
        ]
    lines += [
        "",
        "Anchors (published, test sets): NER BiLSTM-CRF random embeddings 83.6-84.3 F1, pretrained + "
        "chars 90.9 (Lample 2016); POS Plank et al. 2016 94.6 (UD 1.3), Stanza 95.4.",
        "Required: NER dev F1 >= 88 within 30 min CPU training (no pretrained vectors); POS dev >= 94.5.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small subsets and a 90 s budget (default: off)")
    ap.add_argument(
        "--parts",
        default="ner,pos",
        help="comma-separated parts: ner, pos, flair (flair alone: the NER ratios use the last saved "
        "lstmkit NER result in --work) (default: ner,pos; flair runs after ner with --flair-python)",
    )
    ap.add_argument("--max-time", type=float, default=1800.0, help="training budget per part, s (default 1800)")
    ap.add_argument("--epochs", type=int, default=50, help="max epochs (default 50)")
    ap.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    ap.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
    ap.add_argument("--hidden-size", type=int, default=200, help="BiLSTM units per direction (default 200)")
    ap.add_argument("--char-encoder", default="cnn", choices=["cnn", "lstm", "none"], help="(default cnn)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's choice)")
    ap.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    ap.add_argument("--flair-python", default=None, help="Python of an environment with flair (default: skip)")
    ap.add_argument("--flair-epochs", type=int, default=5, help="flair epochs (default 5)")
    ap.add_argument("--work", default=str(ROOT / "bench" / "work" / "tag"), help="model folders")
    ap.add_argument("--out", default=str(RESULTS), help="results markdown (default bench/results/tag.md)")
    ap.add_argument("--verbose", action="store_true", help="show training progress (default: off)")
    args = ap.parse_args()
    from lstmkit.io import atomic_write_text

    if args.quick:
        args.max_time = min(args.max_time, 90.0)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    parts: dict = {}
    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    if "ner" in wanted:
        parts["ner"] = run_lstmkit(NER_TRAIN, NER_DEV, "conll", args, work / "ner")
        print(json.dumps({k: v for k, v in parts["ner"].items() if k not in ("metrics", "baseline")}), flush=True)
    if "flair" in wanted or ("ner" in wanted and args.flair_python):
        parts["flair"] = run_flair(args, work)
    if "pos" in wanted:
        parts["pos"] = run_lstmkit(POS_TRAIN, POS_DEV, "conllu", args, work / "pos")
    for name in ("ner", "pos", "flair"):  # each part's result is kept; parts not run now come from the last run
        saved = work / f"{name}_result.json"
        if name in parts and parts[name] is not None and "error" not in parts[name]:
            atomic_write_text(
                saved,
                json.dumps(
                    {
                        **parts[name],
                        "run": " ".join(sys.argv[1:]),
                        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    }
                ),
            )
        elif name not in parts and saved.is_file() and not args.quick:
            parts[name] = {**json.loads(saved.read_text()), "earlier": True}
    text = write_results(args, parts)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
