"""``lstmkit tag train|evaluate|predict``: argument parsing only (the work is in lstmkit.tasks.tag)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lstmkit.cli.common import add_train_options, train_config_from_args

SCHEMES = ["auto", "IOB1", "IOB2", "IOBES", "none"]


def register(subparsers: argparse._SubParsersAction) -> None:
    top = subparsers.add_parser(
        "tag",
        help="sequence labelling (NER, POS) with a BiLSTM-CRF",
        description="Label every token (named entities, POS tags, chunks) with a BiLSTM-CRF "
        "over word, character and casing features.",
    )
    sub = top.add_subparsers(dest="action", metavar="<action>")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)


def _set_help(p: argparse.ArgumentParser, dest: str, text: str) -> None:
    for action in p._actions:
        if action.dest == dest:
            action.help = text


def _add_reading(p: argparse.ArgumentParser, default_format: Any) -> None:
    a = p.add_argument
    a(
        "--format",
        choices=["conll", "conllu"],
        default=default_format,
        help="conll: token in column 0, tag in --tag-column, blank lines between sentences, -DOCSTART- skipped; "
        "conllu: CoNLL-U with --tag" + ("" if default_format else " (default: as in training)"),
    )
    a(
        "--tag-column",
        type=int,
        default=-1 if default_format else None,
        help="CoNLL column holding the tag (0-based; negative counts from the end)"
        + ("" if default_format else " (default: as in training)"),
    )
    a(
        "--tag",
        dest="conllu_tag",
        choices=["upos", "xpos"],
        default="upos" if default_format else None,
        help="CoNLL-U tag column" + ("" if default_format else " (default: as in training)"),
    )


def _add_train(sub: argparse._SubParsersAction) -> None:
    from lstmkit.tasks.tag import TagConfig, default_train_config

    d, t = TagConfig(), default_train_config()
    p = sub.add_parser(
        "train",
        help="train a tagger",
        description="Train a BiLSTM-CRF tagger on a CoNLL or CoNLL-U file; saves a model folder to "
        "--out. The best epoch is chosen by validation entity F1 (chunk tags such as "
        "B-PER) or token accuracy (plain labels such as POS tags).",
    )
    add_train_options(p, out_default="runs/tag", data_required=True)
    p.set_defaults(
        epochs=t.epochs,
        batch_size=t.batch_size,
        lr=t.lr,
        clip_grad=t.clip_grad,
        patience=t.patience,
        monitor="auto",
        monitor_mode="max",
        hidden_size=d.hidden_size,
        dropout=d.dropout,
        bidirectional=True,
    )
    _set_help(
        p,
        "monitor",
        "validation metric that picks the best epoch: auto = f1 for chunk tags, accuracy for "
        "plain labels; or f1, accuracy, valid_loss (with --monitor-mode min)",
    )
    _set_help(p, "bidirectional", "always on: the tagger's LSTM is bidirectional")
    _set_help(p, "hidden_size", "BiLSTM units per direction")
    _set_help(p, "dropout", "dropout on the BiLSTM input and output (and between layers)")
    _add_reading(p, "conll")
    a = p.add_argument
    a(
        "--scheme",
        choices=SCHEMES,
        default=d.scheme,
        help="tagging scheme of the data; auto detects it (mixed schemes are an error); none = plain labels",
    )
    a(
        "--model-scheme",
        choices=["IOBES", "IOB2"],
        default=d.model_scheme,
        help="scheme the model learns chunk tags in (predictions are written in the data's scheme)",
    )
    a("--no-crf", dest="crf", action="store_false", default=True, help="per-token softmax instead of the CRF")
    a(
        "--char-encoder",
        choices=["cnn", "lstm", "none"],
        default=d.char_encoder,
        help="character features per word: cnn (Ma & Hovy 2016), lstm (char BiLSTM, Lample et al. 2016) or none",
    )
    a("--char-dim", type=int, default=d.char_dim, help="character embedding size")
    a("--char-hidden", type=int, default=d.char_hidden, help="char CNN filters, or char LSTM units per direction")
    a("--char-kernel", type=int, default=d.char_kernel, help="char CNN window (odd)")
    a("--word-dim", type=int, default=d.word_dim, help="word embedding size (ignored with --embeddings)")
    a("--no-casing", dest="casing", action="store_false", default=True, help="no casing-class features")
    a(
        "--embeddings",
        default=None,
        metavar="FILE",
        help="pretrained word vectors, GloVe/word2vec text format (sets the word embedding size; default: none)",
    )
    a("--freeze-embeddings", action="store_true", default=False, help="do not train the pretrained vectors")
    a(
        "--no-lowercase",
        dest="lowercase",
        action="store_false",
        default=True,
        help="keep case for the word lookup (characters always keep it)",
    )
    a(
        "--no-zeros",
        dest="zeros",
        action="store_false",
        default=True,
        help="keep digits for the word lookup (default maps every digit to 0)",
    )
    a("--min-freq", type=int, default=d.min_freq, help="training words seen fewer times become <unk>")
    a("--max-word-len", type=int, default=d.max_word_len, help="characters per word given to the char encoder")
    a(
        "--unk-replace",
        type=float,
        default=d.unk_replace,
        help="probability that a word seen once in training is replaced by <unk> in a training step",
    )
    a(
        "--valid-fraction",
        type=float,
        default=d.valid_fraction,
        help="share of --data held out for validation when --valid is not given",
    )
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="entity precision/recall/F1 (chunk tags) or token accuracy (POS)",
        description="Evaluate a tagger on a tagged file: for chunk tags (B-PER ...), entity-level "
        "precision, recall and F1 per type and micro-averaged with seqeval's "
        "conlleval-compatible rules, plus token accuracy; for plain labels, accuracy.",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="tagged CoNLL / CoNLL-U file")
    _add_reading(p, None)
    p.add_argument("--json", action="store_true", default=False, help="print one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="tag raw text or a column file; CoNLL columns out",
        description="Tag each sentence. Output: the input's columns (the token alone for raw "
        "text) plus the predicted tag, one token per line, a blank line between "
        "sentences; tags in the training data's scheme.",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="input file")
    p.add_argument(
        "--format",
        choices=["text", "conll", "conllu"],
        default="text",
        help="text: one sentence per line, whitespace-tokenised; conll: token in column 0 (other "
        "columns are kept); conllu: CoNLL-U",
    )
    p.add_argument(
        "--nbest",
        type=int,
        default=1,
        help="write the K best tag sequences (one column each, CRF models) with their probabilities "
        "on a '# nbest probabilities:' line before each sentence",
    )
    p.add_argument(
        "--confidence",
        action="store_true",
        default=False,
        help="add a column with the marginal probability of each predicted tag (forward-backward)",
    )
    p.add_argument("--output", default=None, help="write to this file instead of stdout")
    p.set_defaults(func=cmd_predict)


def cmd_train(args: argparse.Namespace) -> int:
    from lstmkit.tasks.tag import TagConfig, train

    tcfg = train_config_from_args(args)
    cfg = TagConfig(
        format=args.format,
        tag_column=args.tag_column,
        conllu_tag=args.conllu_tag,
        scheme=args.scheme,
        model_scheme=args.model_scheme,
        lowercase=args.lowercase,
        zeros=args.zeros,
        min_freq=args.min_freq,
        max_word_len=args.max_word_len,
        embeddings=args.embeddings,
        freeze_embeddings=args.freeze_embeddings,
        valid_fraction=args.valid_fraction,
        word_dim=args.word_dim,
        char_encoder=args.char_encoder,
        char_dim=args.char_dim,
        char_hidden=args.char_hidden,
        char_kernel=args.char_kernel,
        casing=args.casing,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        dropout=args.dropout,
        unk_replace=args.unk_replace,
        crf=args.crf,
    )
    result = train(args.data, args.valid, out=args.out, config=cfg, train_config=tcfg)
    print(_summary(result.metrics), file=sys.stderr)
    print(args.out)
    return 0


def _summary(m: dict[str, Any]) -> str:
    if "f1" in m:
        lines = [
            f"entity F1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
            f"token accuracy {m['accuracy']:.4f}  ({m['entities']} entities, {m['sentences']} sentences)"
        ]
        for typ, v in m.get("per_type", {}).items():
            lines.append(
                f"  {typ:<10} F1 {v['f1']:.4f}  precision {v['precision']:.4f}  recall {v['recall']:.4f}  "
                f"support {v['support']}"
            )
        return "\n".join(lines)
    if "accuracy" in m:
        return f"token accuracy {m['accuracy']:.4f}  ({m['tokens']} tokens, {m['sentences']} sentences)"
    return "no validation data"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lstmkit.tasks.tag import evaluate

    m = evaluate(args.model, args.data, args.format, args.tag_column, args.conllu_tag)
    print(json.dumps(m) if args.json else _summary(m))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from lstmkit.io import atomic_write_text
    from lstmkit.tasks.tag import predict_file

    text = predict_file(args.model, args.data, args.format, nbest=args.nbest, confidence=args.confidence)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
