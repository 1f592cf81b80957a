"""``lstmkit speech manifest|train|evaluate|predict``: argument parsing only (see lstmkit.tasks.speech)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

from lstmkit.cli.common import add_train_options, train_config_from_args
from lstmkit.errors import LstmkitError


def register(subparsers: argparse._SubParsersAction) -> None:
    sp = subparsers.add_parser(
        "speech",
        help="speech recognition: MFCC/log-mel features, (Bi)LSTM, softmax or CTC",
        description="Recognise short utterances: one label per clip (--mode classify) or "
        "a character transcript (--mode ctc).",
    )
    sub = sp.add_subparsers(dest="speech_command", metavar="<command>")
    _register_manifest(sub)
    _register_train(sub)
    _register_evaluate(sub)
    _register_predict(sub)


def _register_manifest(sub) -> None:
    p = sub.add_parser(
        "manifest",
        help="write train.csv / test.csv from a folder of labelled file names",
        description="Scan DIR for audio files whose names carry the label (as in the Free Spoken "
        "Digit Dataset) and write OUT/train.csv and OUT/test.csv (columns path,text "
        "and the other pattern fields; paths relative to OUT).",
    )
    p.add_argument("dir", help="folder of audio files (searched recursively)")
    p.add_argument(
        "--pattern",
        default="{text}_{speaker}_{index}.wav",
        help="file-name pattern; {text} is the label, {index} a number used by --test-index",
    )
    p.add_argument(
        "--test-index",
        default="0-4",
        help="indices that go to test.csv, e.g. 0-4 or 0,2,5-7 ('none' = everything to train.csv)",
    )
    p.add_argument("--out", required=True, help="output folder for train.csv and test.csv")
    p.set_defaults(func=cmd_manifest)


def _add_feature_options(p: argparse.ArgumentParser) -> None:
    from lstmkit.data.audio import FeatureConfig, SpecAugmentConfig

    f, s = FeatureConfig(), SpecAugmentConfig()
    a = p.add_argument
    a("--features", choices=["mfcc", "fbank"], default=f.kind, help="MFCCs or log-mel filterbanks")
    a("--sample-rate", type=int, default=f.sample_rate, help="resample every file to this rate (Hz), mono")
    a("--n-mfcc", type=int, default=f.n_mfcc, help="MFCC coefficients (--features mfcc)")
    a("--n-mels", type=int, default=f.n_mels, help="mel bands")
    a("--deltas", type=int, choices=[0, 1, 2], default=f.deltas, help="append delta (1) and delta-delta (2) features")
    a("--win-ms", type=float, default=f.win_ms, help="analysis window (ms)")
    a("--hop-ms", type=float, default=f.hop_ms, help="frame hop (ms)")
    a(
        "--norm",
        choices=["global", "utterance", "none"],
        default="global",
        help="feature normalisation: train-set mean/std (stored in the model), per utterance, or none",
    )
    a("--specaugment", action="store_true", default=False, help="SpecAugment time/frequency masking in training")
    a("--time-masks", type=int, default=s.time_masks, help="SpecAugment: time masks per utterance")
    a("--time-width", type=int, default=s.time_width, help="SpecAugment: max time-mask width (frames)")
    a("--freq-masks", type=int, default=s.freq_masks, help="SpecAugment: frequency masks per utterance")
    a("--freq-width", type=int, default=s.freq_width, help="SpecAugment: max frequency-mask width (feature dims)")


def _add_decode_options(p: argparse.ArgumentParser, train: bool = False) -> None:
    if train:
        p.add_argument(
            "--decoder",
            choices=["greedy", "beam"],
            default="greedy",
            help="CTC decoding saved with the model (evaluate/predict may override)",
        )
        p.add_argument("--beam-width", type=int, default=8, help="CTC prefix beam width the saved model uses")
    else:
        p.add_argument(
            "--decoder",
            choices=["greedy", "beam"],
            default=None,
            help="CTC decoding (default: the model's, greedy unless trained with --decoder beam)",
        )
        p.add_argument("--beam-width", type=int, default=None, help="CTC prefix beam width (default: the model's)")
    p.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        default="fail",
        help="unreadable, empty or missing audio: stop with exit 2, or warn and skip it",
    )


def _register_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a speech model",
        conflict_handler="resolve",
        description="Train on a path,text manifest; writes the model folder --out.",
    )
    add_train_options(p, out_default="runs/speech", data_required=True)
    p.set_defaults(num_layers=2, dropout=0.1, bidirectional=True)
    p.add_argument(
        "--unidirectional",
        dest="bidirectional",
        action="store_false",
        help="forward-only LSTM (default: bidirectional)",
    )
    p.add_argument(
        "--mode",
        choices=["classify", "ctc"],
        default="classify",
        help="classify: one label per clip; ctc: character transcription with CTC",
    )
    p.add_argument(
        "--monitor-mode",
        choices=["auto", "min", "max"],
        default="auto",
        help="whether --monitor is better smaller or larger (auto: max for accuracies, else min)",
    )
    _add_feature_options(p)
    p.add_argument("--subsample", type=int, default=2, help="stack this many frames into one LSTM step")
    p.add_argument(
        "--pooling",
        choices=["mean", "max", "meanmax", "last"],
        default="meanmax",
        help="classify: how LSTM outputs are pooled over time",
    )
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="share of --data held out for validation when --valid is not given",
    )
    _add_decode_options(p, train=True)
    p.set_defaults(func=cmd_train)


def _register_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy (classify) or WER/CER (ctc) on a manifest",
        description="Score a trained model on a path,text manifest; prints accuracy or WER/CER "
        "and the real-time factor (rtf = compute seconds / audio seconds).",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="manifest CSV (path,text)")
    p.add_argument("--json", action="store_true", default=False, help="print one JSON object on stdout")
    _add_decode_options(p)
    p.set_defaults(func=cmd_evaluate)


def _register_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="labels or transcripts for a manifest, a folder or one file",
        description="Predict for every audio file of TARGET (a manifest .csv, a folder, or one "
        "audio file); writes path,prediction CSV to --out or stdout.",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("target", help="manifest CSV, folder of audio files, or one audio file")
    p.add_argument("--out", default=None, help="write the CSV here (default: stdout)")
    _add_decode_options(p)
    p.set_defaults(func=cmd_predict)


# ------------------------------------------------------------------------------------ commands
def cmd_manifest(args: argparse.Namespace) -> int:
    from lstmkit.data.audio import build_manifest

    test_index = None if args.test_index.lower() == "none" else args.test_index
    counts = build_manifest(args.dir, args.out, pattern=args.pattern, test_index=test_index)
    for split, n in counts.items():
        print(f"{args.out}/{split}.csv: {n} rows", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from lstmkit.data.audio import FeatureConfig, SpecAugmentConfig
    from lstmkit.tasks.speech import SpeechConfig, train

    task_mode = args.mode
    direction = args.monitor_mode
    if direction == "auto":
        direction = "max" if "accuracy" in args.monitor else "min"
    ns = argparse.Namespace(**{**vars(args), "monitor_mode": direction})
    train_cfg = train_config_from_args(ns)
    features = FeatureConfig(
        kind=args.features,
        sample_rate=args.sample_rate,
        n_mfcc=args.n_mfcc,
        n_mels=args.n_mels,
        win_ms=args.win_ms,
        hop_ms=args.hop_ms,
        deltas=args.deltas,
    )
    augment = SpecAugmentConfig(
        time_masks=args.time_masks, time_width=args.time_width, freq_masks=args.freq_masks, freq_width=args.freq_width
    )
    cfg = SpeechConfig(
        mode=task_mode,
        features=features,
        norm=args.norm,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        bidirectional=args.bidirectional,
        dropout=args.dropout,
        subsample=args.subsample,
        pooling=args.pooling,
        specaugment=args.specaugment,
        augment=augment,
        decoder=args.decoder,
        beam_width=args.beam_width,
        valid_fraction=args.valid_fraction,
        on_error=args.on_error,
    )
    metrics = train(args.data, cfg, train_cfg, args.out, valid=args.valid)
    print(json.dumps({"model": str(args.out), **metrics}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import lstmkit

    _check_beam(args)
    metrics = lstmkit.load(args.model).evaluate(args.data, args.on_error, args.decoder, args.beam_width)
    if args.json:
        print(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import lstmkit
    from lstmkit.io import atomic_write_text

    _check_beam(args)
    rows = lstmkit.load(args.model).predict(args.target, args.on_error, args.decoder, args.beam_width)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["path", "prediction"], *([str(p), t] for p, t in rows)])
    if args.out:
        atomic_write_text(args.out, buf.getvalue())
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def _check_beam(args: argparse.Namespace) -> None:
    if args.beam_width is not None and args.beam_width < 1:
        raise LstmkitError(f"--beam-width must be >= 1 (got {args.beam_width})")
