"""``lstmkit classify train|evaluate|predict``: argument parsing only (the work is in lstmkit.tasks.classify)."""

from __future__ import annotations

import argparse
import json
import sys

from lstmkit.cli.common import add_train_options, train_config_from_args
from lstmkit.errors import LstmkitError


def register(subparsers: argparse._SubParsersAction) -> None:
    top = subparsers.add_parser(
        "classify",
        help="text / sequence classification (sentiment, topics, ...)",
        description="Classify texts (or number sequences) with an embedding + (Bi)LSTM + pooling model.",
    )
    sub = top.add_subparsers(dest="action", metavar="<action>")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)


def _add_reading(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--text-column",
        default=None,
        help="text column of a CSV/TSV with a header (default: guessed: text, sentence, review, ...)",
    )
    p.add_argument(
        "--label-column",
        default=None,
        help="label column of a CSV/TSV with a header (default: guessed: label, class, target, ...)",
    )
    p.add_argument(
        "--format",
        choices=["auto", "csv", "tsv", "lines"],
        default="auto",
        help="file format: csv/tsv with a header, or 'lines' of label<TAB>text; auto: a header naming "
        "a label column means a table (.csv comma, else tab), otherwise lines",
    )


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a classifier",
        description="Train a classifier on a labelled CSV/TSV (e.g. GLUE SST-2 train.tsv) or on "
        "label<TAB>text lines; saves a model folder to --out.",
    )
    add_train_options(p, out_default="runs/classify", data_required=True)
    p.set_defaults(epochs=10, batch_size=64, lr=2e-3, dropout=0.3, monitor="accuracy", monitor_mode="max", patience=3)
    _add_reading(p)
    a = p.add_argument
    a(
        "--input",
        choices=["text", "numeric"],
        default="text",
        help="'numeric': each text field is a sequence of numbers (space/comma separated), one value per step",
    )
    a(
        "--tokenizer",
        choices=["word", "whitespace", "char", "bpe"],
        default="word",
        help="word: regex words+punctuation; whitespace: split on spaces; char; bpe: Hugging Face BPE trained "
        "on the training texts",
    )
    a("--lowercase", action="store_true", default=False, help="lowercase texts before tokenising")
    a("--min-freq", type=int, default=1, help="words seen fewer times in training become <unk>")
    a("--max-vocab", type=int, default=None, help="keep at most this many words (most frequent; default: all)")
    a("--bpe-vocab-size", type=int, default=8000, help="BPE vocabulary size (--tokenizer bpe)")
    a("--max-len", type=int, default=None, help="keep at most this many tokens per text (default: all)")
    a(
        "--embeddings",
        default=None,
        metavar="FILE",
        help="pretrained word vectors, GloVe/word2vec text format (sets the embedding size; default: none)",
    )
    a("--freeze-embeddings", action="store_true", default=False, help="do not train the pretrained vectors")
    a("--embed-size", type=int, default=128, help="embedding size (ignored with --embeddings)")
    a(
        "--pooling",
        choices=["last", "max", "mean", "attention"],
        default="max",
        help="how LSTM outputs become one vector (padding is ignored by all)",
    )
    a("--variational-dropout", type=float, default=0.0, help="lstmkit.nn variational (locked) dropout")
    a("--weight-drop", type=float, default=0.0, help="lstmkit.nn DropConnect on recurrent weights")
    a("--layer-norm", action="store_true", default=False, help="layer-normalised LSTM cells")
    a(
        "--word-dropout",
        type=float,
        default=0.0,
        help="training only: replace each token by <unk> with this probability (helps with unseen words)",
    )
    a(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="share of --data held out for validation when --valid is not given",
    )
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, macro-F1, per-class precision/recall, confusion matrix",
        description="Evaluate a trained classifier on a labelled file read with the training "
        "options (columns, format).",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="labelled file")
    p.add_argument("--plot", default=None, help="confusion-matrix PNG (default: MODEL/confusion_matrix.png)")
    p.add_argument("--json", action="store_true", default=False, help="print one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="label and class probabilities per text",
        description="Predict a label and class probabilities for each text: one text per line, "
        "or a CSV/TSV text column.",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="texts: one per line, or a .csv/.tsv with a text column")
    p.add_argument(
        "--text-column", default=None, help="text column of a CSV/TSV (default: the training one, else guessed)"
    )
    p.add_argument(
        "--output-format", choices=["csv", "jsonl"], default="csv", help="csv (text,label,p_<label>...) or JSON lines"
    )
    p.add_argument("--output", default=None, help="output file (default: stdout)")
    p.set_defaults(func=cmd_predict)


def cmd_train(args: argparse.Namespace) -> int:
    from lstmkit.tasks.classify import ClassifierShape, ClassifyConfig, train
    from lstmkit.train import is_main_process

    if not 0 <= args.valid_fraction < 1:
        raise LstmkitError(f"--valid-fraction must be in [0, 1) (got {args.valid_fraction})")
    if not 0 <= args.word_dropout < 1:
        raise LstmkitError(f"--word-dropout must be in [0, 1) (got {args.word_dropout})")
    cfg = ClassifyConfig(
        input=args.input,
        tokenizer=args.tokenizer,
        lowercase=args.lowercase,
        min_freq=args.min_freq,
        max_vocab=args.max_vocab,
        bpe_vocab_size=args.bpe_vocab_size,
        max_len=args.max_len,
        embeddings=args.embeddings,
        freeze_embeddings=args.freeze_embeddings,
        text_column=args.text_column,
        label_column=args.label_column,
        format=args.format,
        valid_fraction=args.valid_fraction,
    )
    shape = ClassifierShape(
        embed_size=args.embed_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        bidirectional=args.bidirectional,
        dropout=args.dropout,
        pooling=args.pooling,
        variational_dropout=args.variational_dropout,
        weight_drop=args.weight_drop,
        layer_norm=args.layer_norm,
        word_dropout=args.word_dropout,
    )
    _check_positive(
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        embed_size=args.embed_size,
        min_freq=args.min_freq,
        bpe_vocab_size=args.bpe_vocab_size,
    )
    res = train(args.data, args.valid, args.out, cfg, shape, train_config_from_args(args))
    if is_main_process():
        m = res.metrics
        if m:
            print(f"saved {args.out}: valid accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")
        else:
            print(f"saved {args.out}")
    return 0


def _check_positive(**values: int | None) -> None:
    for name, v in values.items():
        if v is not None and v < 1:
            raise LstmkitError(f"--{name.replace('_', '-')} must be >= 1 (got {v})")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lstmkit.tasks.classify import evaluate

    plot = args.plot or str(Path(args.model) / "confusion_matrix.png")
    m = evaluate(args.model, args.data, plot=plot)
    if args.json:
        print(json.dumps({**m, "confusion_matrix_png": plot}))
        return 0
    print(f"accuracy  {m['accuracy']:.4f}\nmacro-F1  {m['macro_f1']:.4f}\nexamples  {m['n']}")
    print(f"{'class':<20} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for name, c in m["per_class"].items():
        print(f"{name[:20]:<20} {c['precision']:>9.4f} {c['recall']:>9.4f} {c['f1']:>9.4f} {c['support']:>8d}")
    print(f"confusion matrix: {plot}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from lstmkit.io import atomic_write_text
    from lstmkit.tasks.classify import format_predictions, load_predictor

    pred = load_predictor(args.model)
    rows = pred.predict_file(args.data, args.text_column)
    out = format_predictions(rows, pred.labels, args.output_format)
    if args.output:
        atomic_write_text(args.output, out)
    else:
        sys.stdout.write(out)
    return 0
