"""``lstmkit lm train|evaluate|generate``: argument parsing only (the work is in lstmkit.tasks.lm)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings

from lstmkit.cli.common import add_train_options, train_config_from_args
from lstmkit.errors import LstmkitError


def register(subparsers: argparse._SubParsersAction) -> None:
    top = subparsers.add_parser(
        "lm",
        help="word- or character-level language models and text generation",
        description="Train LSTM language models (truncated BPTT, AWD-LSTM regularisation, "
        "adaptive softmax), measure perplexity, generate text.",
    )
    sub = top.add_subparsers(dest="action", metavar="<action>")
    _add_train(sub)
    _add_evaluate(sub)
    _add_generate(sub)


def _fractions(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.9,0.1, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 2000,10000, got {text!r}") from None


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a language model",
        description="Train on a plain-text file (--data train.txt --valid valid.txt, or --split "
        "fractions of one file). --batch-size is the number of parallel streams.",
    )
    add_train_options(p, out_default="runs/lm", data_required=True)
    p.set_defaults(
        epochs=20, batch_size=20, lr=2e-3, dropout=0.2, hidden_size=256, num_layers=2, patience=3, clip_grad=0.25
    )
    a = p.add_argument
    a(
        "--level",
        choices=["word", "char"],
        default="word",
        help="word: whitespace tokens with <eos> at line ends; char: every character",
    )
    a("--test", default=None, help="test file evaluated after training (metrics.json 'test')")
    a(
        "--split",
        type=_fractions,
        default=[0.9, 0.1],
        metavar="TRAIN,VALID[,TEST]",
        help="contiguous fractions of --data used when --valid is not given",
    )
    a("--bptt", type=int, default=35, help="truncated-BPTT window length (steps)")
    a("--min-freq", type=int, default=1, help="words seen fewer times become <unk>")
    a("--max-vocab", type=int, default=None, help="keep at most this many tokens (default: all)")
    a("--lowercase", action="store_true", default=False, help="lowercase the text")
    a("--embed-size", type=int, default=256, help="embedding size (= top layer size with --tie-weights)")
    a("--tie-weights", action="store_true", default=False, help="share the embedding and output matrices")
    a(
        "--softmax",
        choices=["auto", "full", "adaptive"],
        default="auto",
        help="output layer; auto = adaptive softmax for vocabularies over 10k tokens without --tie-weights",
    )
    a(
        "--cutoffs",
        type=_ints,
        default=[],
        metavar="C1,C2,...",
        help="adaptive-softmax cluster boundaries (default: 2000,10000,50000 below the vocabulary size)",
    )
    a("--dropout-in", type=float, default=0.0, help="locked dropout on the embeddings (AWD dropouti)")
    a("--dropout-hidden", type=float, default=0.0, help="locked dropout between LSTM layers (AWD dropouth)")
    a("--dropout-emb", type=float, default=0.0, help="embedding dropout: drop whole words (AWD dropoute)")
    a("--weight-drop", type=float, default=0.0, help="DropConnect on recurrent weights (AWD wdrop)")
    a("--alpha", type=float, default=0.0, help="activation regularisation coefficient (AR)")
    a("--beta", type=float, default=0.0, help="temporal activation regularisation coefficient (TAR)")
    a("--eval-batch-size", type=int, default=10, help="parallel streams when evaluating")
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="perplexity (word) or nats and bits per character (char)",
        description="Evaluate a language model on a text file, hidden state carried through it.",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="text file")
    p.add_argument(
        "--batch-size", type=int, default=None, help="parallel streams (default: the model's --eval-batch-size)"
    )
    p.add_argument("--json", action="store_true", default=False, help="print one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="stream sampled text",
        description="Sample text after --prompt, printing each token as it is produced; each new "
        "token advances the LSTM by one step (the prefix is never re-run).",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--prompt", default="", help="text to continue (default: start of a line)")
    p.add_argument("--length", type=int, default=200, help="tokens (words or characters) to generate")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0 = greedy)")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0 = all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling: smallest set with probability >= p")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.set_defaults(func=cmd_generate)


def cmd_train(args: argparse.Namespace) -> int:
    from lstmkit.tasks.lm import LMConfig, LMShape, train
    from lstmkit.train import is_main_process

    for name in ("bptt", "hidden_size", "num_layers", "embed_size", "min_freq", "eval_batch_size"):
        if getattr(args, name) < 1:
            raise LstmkitError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    for name in ("dropout", "dropout_in", "dropout_hidden", "dropout_emb", "weight_drop"):
        if not 0 <= getattr(args, name) < 1:
            raise LstmkitError(f"--{name.replace('_', '-')} must be in [0, 1) (got {getattr(args, name)})")
    cfg = LMConfig(
        level=args.level,
        bptt=args.bptt,
        min_freq=args.min_freq,
        max_vocab=args.max_vocab,
        lowercase=args.lowercase,
        split=args.split,
        eval_batch_size=args.eval_batch_size,
    )
    shape = LMShape(
        embed_size=args.embed_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        tie_weights=args.tie_weights,
        softmax=args.softmax,
        cutoffs=args.cutoffs,
        dropout=args.dropout,
        dropout_in=args.dropout_in,
        dropout_hidden=args.dropout_hidden,
        dropout_emb=args.dropout_emb,
        weight_drop=args.weight_drop,
        alpha=args.alpha,
        beta=args.beta,
    )
    res = train(args.data, args.valid, args.out, cfg, shape, train_config_from_args(args), test=args.test)
    if is_main_process():
        print(f"saved {args.out}: " + "; ".join(f"{part} {_summary(m)}" for part, m in res.metrics.items()))
    return 0


def _summary(m: dict) -> str:
    if "bits_per_char" in m:
        return f"{m['nats_per_char']:.4f} nats/char, {m['bits_per_char']:.4f} bits/char"
    return f"perplexity {m['perplexity']:.2f}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lstmkit.tasks.lm import load_predictor

    if args.batch_size is not None and args.batch_size < 1:
        raise LstmkitError(f"--batch-size must be >= 1 (got {args.batch_size})")
    m = load_predictor(args.model).evaluate_file(args.data, args.batch_size)
    print(json.dumps(m) if args.json else f"{args.data}: {_summary(m)} ({m['tokens']} tokens)")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from lstmkit.tasks.lm import EOS, check_sampling, load_predictor

    check_sampling(args.temperature, args.top_k, args.top_p, args.length)
    pred = load_predictor(args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tokens = pred.generate(args.prompt, args.length, args.temperature, args.top_k, args.top_p, args.seed)
        first = next(tokens, None)  # reads the prompt: warnings about unknown tokens come now
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    out = sys.stdout
    out.write(args.prompt)
    line_start = args.prompt == "" or args.prompt.endswith("\n")
    for tok in itertools.chain([] if first is None else [first], tokens):
        if pred.config.level == "char":
            text = tok
        elif tok == EOS:
            text, line_start = "\n", True
        else:
            text, line_start = ("" if line_start else " ") + tok, False
        out.write(text)
        out.flush()  # stream: each token appears as soon as it is sampled
    out.write("\n")
    return 0
