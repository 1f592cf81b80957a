"""``lstmkit export --model DIR --out EXPORT_DIR [--quantize int8] [--graph auto|op|scan] [--overwrite]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lstmkit.config import Settings, setting
from lstmkit.tasks.spec import Arg, Command


@dataclass
class ExportOptions(Settings):
    """``lstmkit export``: a model folder as ONNX graphs for ``lstmkit.runtime`` (no torch) and ``lstmkit serve``."""

    title = "export"

    quantize: Literal["none", "int8"] = setting(
        "none", help="int8: dynamic int8 quantization of the weights (onnxruntime.quantization); none: float32"
    )
    graph: Literal["auto", "op", "scan"] = setting(
        "auto",
        help="how whole sequences run: op = ONNX's LSTM operator, scan = one MatMul for the input projection "
        "plus a Scan over time; auto = op where the configuration allows it (plain cells, peepholes), else scan",
    )


def run(args: dict[str, Any], options: ExportOptions) -> int:
    import json

    from lstmkit.errors import LstmkitError
    from lstmkit.export import export_model

    if not args.get("out"):
        raise LstmkitError("lstmkit export: --out is required")
    out = export_model(
        args["model"],
        args["out"],
        quantize=None if options.quantize == "none" else options.quantize,
        mode=options.graph,
        overwrite=bool(args.get("overwrite")),
        check_data=args.get("data"),
    )
    print(f"export folder: {out}")
    if args.get("data"):  # the metrics of both, and the change
        check = json.loads((out / "check.json").read_text(encoding="utf-8"))
        print(f"{'metric':<24} {'torch':>12} {'export':>12} {'change':>12}")
        for k, d in check["change"].items():
            print(f"{k:<24} {check['torch'][k]:>12.6g} {check['onnx'][k]:>12.6g} {d:>+12.3g}")
    return 0


COMMAND = Command(
    name="export",
    help="export a model folder as ONNX graphs (+ vocabularies, scalers) for the torch-free runtime and lstmkit serve",
    run="lstmkit.export.command:run",
    options=ExportOptions,
    args=(
        Arg("out", "the export folder to write", required=True),
        Arg(
            "data",
            "labelled data (as `evaluate --data` takes it): evaluate the export beside the model and save both "
            "in check.json (with --quantize int8: the accuracy change)",
        ),
    ),
    overwrite=True,
)
