"""``lstmkit translate train|evaluate|predict``: argument parsing only (the work is in
:mod:`lstmkit.tasks.translate`)."""

from __future__ import annotations

import argparse
import io
import json
import sys

from lstmkit.cli.common import add_train_options, train_config_from_args
from lstmkit.errors import LstmkitError
from lstmkit.io import atomic_write_text

DESCRIPTION = (
    "Machine translation with a bidirectional LSTM encoder and an attentional LSTM decoder. "
    "Data: parallel text files, one sentence per line, line i of the source aligned with line i "
    "of the target."
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "translate", help="machine translation (LSTM encoder-decoder with attention)", description=DESCRIPTION
    )
    sub = p.add_subparsers(dest="action", metavar="<action>")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)


def _add_train(sub) -> None:
    from lstmkit.tasks.translate import TranslateConfig

    d = TranslateConfig()
    p = sub.add_parser(
        "train",
        help="learn tokenisers and a model, select it on validation BLEU",
        description="Train a translator. Give files with --source/--target (and --valid-source/"
        "--valid-target), or prefixes with --data/--valid and --src-lang/--tgt-lang.",
    )
    add_train_options(p, out_default="runs/translate")
    p.set_defaults(
        hidden_size=d.hidden_size,
        dropout=d.dropout,
        monitor="bleu",
        monitor_mode="max",
        batch_size=64,
        patience=3,
        func=cmd_train,
    )
    _relabel(
        p,
        data="training file prefix: PREFIX.SRC_LANG and PREFIX.TGT_LANG (instead of --source/--target)",
        valid="validation file prefix, as --data (instead of --valid-source/--valid-target)",
        bidirectional="ignored: the encoder is always bidirectional (H/2 units per direction)",
        monitor="validation metric for early stopping / best model: bleu, chrf or valid_loss",
    )
    a = p.add_argument
    a("--source", help="training source file (one sentence per line)")
    a("--target", help="training target file, line-aligned with --source")
    a("--valid-source", help="validation source file")
    a("--valid-target", help="validation target file")
    a("--src-lang", default="de", help="source file suffix used with --data/--valid")
    a("--tgt-lang", default="en", help="target file suffix used with --data/--valid")
    a(
        "--tokenizer",
        choices=["bpe", "whitespace"],
        default=d.tokenizer,
        help="bpe: subwords (Hugging Face tokenizers); whitespace: pre-tokenised words",
    )
    a("--vocab-size", type=int, default=d.vocab_size, help="vocabulary size per side (or of the shared one)")
    a("--shared-vocab", action="store_true", help="one vocabulary for source and target")
    a("--lowercase", action="store_true", help="lowercase all text (BLEU is then case-insensitive)")
    a("--max-length", type=int, default=d.max_length, help="truncate longer sentences (tokens), with a warning")
    a("--emb-size", type=int, default=d.emb_size, help="embedding size")
    a(
        "--attention",
        choices=["bahdanau", "general", "dot"],
        default=d.attention,
        help="attention score: bahdanau (additive), general (Luong bilinear) or dot (Luong)",
    )
    a("--no-tie-embeddings", action="store_true", help="do not tie the output layer to the target embeddings")
    a("--label-smoothing", type=float, default=d.label_smoothing, help="label smoothing epsilon")
    a("--valid-beam", type=int, default=d.valid_beam, help="beam for validation BLEU during training (1 = greedy)")
    a("--alpha", type=float, default=d.alpha, help="length normalisation: score = logprob / length**alpha")
    a("--max-ratio", type=float, default=d.max_ratio, help="longest output: ceil(max_ratio * source length) + 5 tokens")


def _add_decode_options(p) -> None:
    a = p.add_argument
    a("--model", required=True, help="model folder written by `lstmkit translate train`")
    a("--beam", type=int, default=5, help="beam size (1 = greedy)")
    a("--alpha", type=float, default=None, help="length normalisation power (default: the model's, 1.0)")
    a("--max-ratio", type=float, default=None, help="output length limit x source length (default: the model's)")
    a("--batch-size", type=int, default=64, help="sentences decoded together")
    a("--device", choices=["cpu", "cuda"], default="cpu", help="device for decoding")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="corpus BLEU and chrF (sacrebleu, detokenised) on a pair of files")
    _add_decode_options(p)
    p.add_argument("--source", required=True, help="source file")
    p.add_argument("--target", required=True, help="reference file, line-aligned with --source")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="translate a file, or stdin line by line")
    _add_decode_options(p)
    a = p.add_argument
    a("--input", default="-", help="file to translate, one sentence per line ('-' = stdin, line by line)")
    a("--output", default="-", help="where translations go ('-' = stdout); empty input lines stay empty")
    a(
        "--nbest",
        type=int,
        default=1,
        help="print this many hypotheses per sentence, as 'rank<TAB>score<TAB>text' lines with a blank line "
        "after each sentence",
    )
    a("--scores", action="store_true", help="prefix each translation with its normalised score and a tab")
    a("--plot-attention", metavar="PNG", default=None, help="write the attention heatmap of one sentence")
    a("--plot-index", type=int, default=0, help="which input line (0-based) --plot-attention shows")
    p.set_defaults(func=cmd_predict)


def _relabel(parser: argparse.ArgumentParser, **helps: str) -> None:
    for action in parser._actions:
        if action.dest in helps:
            action.help = helps[action.dest]


# ----------------------------------------------------------------------------------------- commands
def _train_files(args) -> tuple[str, str, str | None, str | None]:
    src, tgt = args.source, args.target
    if args.data:
        src = src or f"{args.data}.{args.src_lang}"
        tgt = tgt or f"{args.data}.{args.tgt_lang}"
    vsrc, vtgt = args.valid_source, args.valid_target
    if args.valid:
        vsrc = vsrc or f"{args.valid}.{args.src_lang}"
        vtgt = vtgt or f"{args.valid}.{args.tgt_lang}"
    if not src or not tgt:
        raise LstmkitError("give training data: --source and --target (or --data PREFIX)")
    return src, tgt, vsrc, vtgt


def cmd_train(args) -> int:
    from lstmkit.tasks.translate import TranslateConfig, train

    cfg = TranslateConfig(
        tokenizer=args.tokenizer,
        vocab_size=args.vocab_size,
        shared_vocab=args.shared_vocab,
        lowercase=args.lowercase,
        max_length=args.max_length,
        emb_size=args.emb_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        dropout=args.dropout,
        attention=args.attention,
        tie_embeddings=not args.no_tie_embeddings,
        label_smoothing=args.label_smoothing,
        valid_beam=args.valid_beam,
        alpha=args.alpha,
        max_ratio=args.max_ratio,
        train=train_config_from_args(args),
    )
    translator = train(cfg, *_train_files(args), out_dir=args.out)
    print(json.dumps({"out": str(args.out), **translator.metrics}), file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from lstmkit.tasks.translate import load_predictor

    result = load_predictor(args.model, args.device).evaluate_files(
        args.source, args.target, beam=args.beam, alpha=args.alpha, max_ratio=args.max_ratio, batch_size=args.batch_size
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"BLEU = {result['bleu']:.2f}  ({result['bleu_signature']})")
        print(f"chrF = {result['chrf']:.2f}  ({result['chrf_signature']})")
        print(
            f"sentences = {result['sentences']}, skipped empty pairs = {result['skipped_empty']}, "
            f"beam = {result['beam']}"
        )
    return 0


def cmd_predict(args) -> int:
    from lstmkit.data.parallel import read_lines
    from lstmkit.tasks.translate import load_predictor

    translator = load_predictor(args.model, args.device)
    opts = dict(beam=args.beam, nbest=args.nbest, alpha=args.alpha, max_ratio=args.max_ratio)
    translator.options(**opts)  # check the options before reading any input
    out = sys.stdout if args.output == "-" else io.StringIO()
    plotted = None
    if args.input == "-":
        for i, line in enumerate(sys.stdin):
            res = translator.translate([line.strip()], **opts)[0] if line.strip() else []
            _write(out, res, args)
            out.flush()
            plotted = res[0] if i == args.plot_index and res else plotted
    else:
        lines = [s.strip() for s in read_lines(args.input)]
        keep = [i for i, s in enumerate(lines) if s]
        done = translator.translate([lines[i] for i in keep], batch_size=args.batch_size, **opts)
        results = dict(zip(keep, done))
        for i in range(len(lines)):
            _write(out, results.get(i, []), args)
        plotted = results[args.plot_index][0] if args.plot_index in results else None
    if out is not sys.stdout:
        atomic_write_text(args.output, out.getvalue())
    if args.plot_attention:
        _plot(plotted, args)
    return 0


def _write(out, res, args) -> None:
    if args.nbest > 1:
        for k, t in enumerate(res):
            out.write(f"{k}\t{t.score:.4f}\t{t.text}\n")
        out.write("\n")
    elif args.scores:
        out.write(f"{res[0].score:.4f}\t{res[0].text}\n" if res else "\n")
    else:
        out.write((res[0].text if res else "") + "\n")


def _plot(t, args) -> None:
    from lstmkit.plots import plot_attention

    if t is None:
        raise LstmkitError(f"--plot-index {args.plot_index}: no such non-empty input line")
    plot_attention(t.attention, t.source_tokens, t.tokens, args.plot_attention, title=t.text[:80])
    print(f"attention plot: {args.plot_attention}", file=sys.stderr)
