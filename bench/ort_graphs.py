"""Which ONNX graph of a plain LSTM runs fastest on ONNX Runtime? (run by hand; writes bench/results/ort_graphs.md)

An experiment behind issue 19's target "≥ 1.0× torch.nn.LSTM at batch ≥ 32": hand-built, time-major
graphs of one plain LSTM layer (I = H = 256, T = 100, the weights of a torch.nn.LSTM), each checked
against torch (max |Δ| < 1e-4) and timed interleaved with it on one thread:

* ``op``:        ONNX's LSTM operator (what ``lstmkit export`` writes for plain layers);
* ``scan-bulk``: the input projection of all T steps as one MatMul, then a Scan over h W_hhᵀ and the
  gates (what ``lstmkit export --graph scan`` writes);
* ``scan-step``: a Scan whose body does both products per step, ``Gemm(x_t, W_ih, b)`` then
  ``Gemm(h, W_hh, that)``, gates ordered i|f|o|g so that one Sigmoid and one Tanh cover them;
* ``scan-cat``:  as scan-step with one ``Gemm([x_t, h], [W_ih; W_hh], b)``.

Time-major input (T, B, I) for all, so that no graph pays for a transpose. These forms are not in the
exporter; the table says whether one of them would earn a place there.

    .venv/bin/python bench/ort_graphs.py            # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto
from onnx import helper as hp
from onnx import numpy_helper as nh

sys.path.insert(0, str(Path(__file__).parent))
from deploy import interleaved, ratio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE, STEPS = 256, 100


def value(name: str, shape: list | None = None) -> object:
    return hp.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model(nodes: list, inits: dict[str, np.ndarray]) -> bytes:
    g = hp.make_graph(
        nodes, "lstm", [value("x", ["T", "B", SIZE])], [value("y")], [nh.from_array(v, k) for k, v in inits.items()]
    )
    return hp.make_model(g, opset_imports=[hp.make_opsetid("", 17)]).SerializeToString()


def zero_state() -> tuple[list, dict[str, np.ndarray]]:
    """h0 = c0 = zeros (B, H) from x's batch size."""
    nodes = [
        hp.make_node("Shape", ["x"], ["shape"]),
        hp.make_node("Gather", ["shape", "one"], ["batch"], axis=0),
        hp.make_node("Concat", ["batch", "hidden"], ["state_shape"], axis=0),
        hp.make_node("ConstantOfShape", ["state_shape"], ["h0"], value=nh.from_array(np.zeros(1, np.float32))),
    ]
    return nodes, {"one": np.array([1], np.int64), "hidden": np.array([SIZE], np.int64)}


def scan_model(w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray, form: str) -> bytes:
    """w_* (4H, ·) and bias (4H,) in gate order i|f|o|g."""
    H = SIZE
    body_inits = {"split_2": np.array([3 * H, H], np.int64), "split_3": np.array([H] * 3, np.int64)}
    outer = {"b": bias[None, :]}
    if form == "scan-bulk":
        pre = [hp.make_node("Gemm", ["h", "w_hh", "x_t"], ["z"])]
        body_inits["w_hh"] = w_hh.T.copy()
        outer["w_ih"] = w_ih.T.copy()
        scan_x = [hp.make_node("MatMul", ["x", "w_ih"], ["xw"]), hp.make_node("Add", ["xw", "b"], ["xg"])]
    elif form == "scan-step":
        pre = [hp.make_node("Gemm", ["x_t", "w_ih", "b"], ["xg_t"]), hp.make_node("Gemm", ["h", "w_hh", "xg_t"], ["z"])]
        body_inits |= {"w_ih": w_ih.T.copy(), "w_hh": w_hh.T.copy(), "b": outer.pop("b")}
        scan_x = [hp.make_node("Identity", ["x"], ["xg"])]
    else:  # scan-cat
        pre = [hp.make_node("Concat", ["x_t", "h"], ["xh"], axis=-1), hp.make_node("Gemm", ["xh", "w", "b"], ["z"])]
        body_inits |= {"w": np.concatenate([w_ih, w_hh], axis=1).T.copy(), "b": outer.pop("b")}
        scan_x = [hp.make_node("Identity", ["x"], ["xg"])]
    body_nodes = pre + [
        hp.make_node("Split", ["z", "split_2"], ["z_ifo", "z_g"], axis=-1),
        hp.make_node("Sigmoid", ["z_ifo"], ["s"]),
        hp.make_node("Tanh", ["z_g"], ["g"]),
        hp.make_node("Split", ["s", "split_3"], ["i", "f", "o"], axis=-1),
        hp.make_node("Mul", ["f", "c"], ["fc"]),
        hp.make_node("Mul", ["i", "g"], ["ig"]),
        hp.make_node("Add", ["fc", "ig"], ["c2"]),  # c' = f ⊙ c + i ⊙ g
        hp.make_node("Tanh", ["c2"], ["tc"]),
        hp.make_node("Mul", ["o", "tc"], ["h2"]),  # h' = o ⊙ tanh(c')
        hp.make_node("Identity", ["h2"], ["y_t"]),
    ]
    body = hp.make_graph(
        body_nodes,
        "step",
        [value(n) for n in ("h", "c", "x_t")],
        [value(n) for n in ("h2", "c2", "y_t")],
        [nh.from_array(v, k) for k, v in body_inits.items()],
    )
    init_nodes, init_values = zero_state()
    scan = hp.make_node("Scan", ["h0", "h0", "xg"], ["h_n", "c_n", "y"], body=body, num_scan_inputs=1)
    return model(init_nodes + scan_x + [scan], init_values | outer)


def op_model(ref: torch.nn.LSTM) -> bytes:
    H = SIZE
    iofc = np.r_[0:H, 3 * H : 4 * H, H : 2 * H, 2 * H : 3 * H]  # torch's i|f|g|o -> ONNX's i|o|f|c
    w, r = ref.weight_ih_l0.detach().numpy()[iofc], ref.weight_hh_l0.detach().numpy()[iofc]
    b = np.concatenate([ref.bias_ih_l0.detach().numpy()[iofc], ref.bias_hh_l0.detach().numpy()[iofc]])
    nodes = [
        hp.make_node("LSTM", ["x", "W", "R", "B"], ["y4"], hidden_size=H),
        hp.make_node("Squeeze", ["y4", "axis"], ["y"]),
    ]
    return model(nodes, {"W": w[None], "R": r[None], "B": b[None], "axis": np.array([1], np.int64)})


def sessions(ref: torch.nn.LSTM) -> dict[str, ort.InferenceSession]:
    H = SIZE
    ifog = np.r_[0:H, H : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]  # torch's i|f|g|o -> i|f|o|g
    w_ih, w_hh = ref.weight_ih_l0.detach().numpy()[ifog], ref.weight_hh_l0.detach().numpy()[ifog]
    bias = (ref.bias_ih_l0 + ref.bias_hh_l0).detach().numpy()[ifog]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    graphs = {"op": op_model(ref)} | {
        f: scan_model(w_ih, w_hh, bias, f) for f in ("scan-bulk", "scan-step", "scan-cat")
    }
    return {k: ort.InferenceSession(g, opts, providers=["CPUExecutionProvider"]) for k, g in graphs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ort_graphs.md"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ref = torch.nn.LSTM(SIZE, SIZE).eval()
    sess = sessions(ref)
    forms = list(sess)
    lines = [
        "# ONNX graph forms of a plain LSTM against torch.nn.LSTM",
        "",
        f"`.venv/bin/python bench/ort_graphs.py` — {platform.machine()}, 1 thread, torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}; I = H = 256, T = 100, time-major. Cells: torch time / ORT time "
        "(median over interleaved repetitions; > 1: ORT faster), torch's ms in its column.",
        "",
        "| batch | torch.nn.LSTM ms | torch GFLOP/s | " + " | ".join(forms) + " | best ORT GFLOP/s |",
        "|---:|---:|---:|" + "---:|" * len(forms) + "---:|",
    ]
    for batch in (1, 8, 32, 64, 128):
        x = torch.randn(STEPS, batch, SIZE)
        xn = x.numpy()
        with torch.no_grad():
            want = ref(x)[0].numpy()
            for name, s in sess.items():
                err = float(np.abs(s.run(None, {"x": xn})[0] - want).max())
                assert err < 1e-4, f"{name}: max |Δ| {err}"
            fns = {"torch": lambda x=x: ref(x)} | {
                k: (lambda s=s, xn=xn: s.run(None, {"x": xn})) for k, s in sess.items()
            }
            t = interleaved(fns, a.reps)
        cells = [f"{ratio(t, 'torch', k):.2f}" for k in forms]
        flops = 2 * STEPS * batch * (2 * SIZE) * 4 * SIZE  # the two products x W_ihᵀ and h W_hhᵀ
        rate = {k: flops / statistics.median(v) / 1e9 for k, v in t.items()}
        best = max(rate[k] for k in forms)
        lines.append(
            f"| {batch} | {1e3 * statistics.median(t['torch']):.2f} | {rate['torch']:.0f} | "
            + " | ".join(cells)
            + f" | {best:.0f} |"
        )
        print(lines[-1], flush=True)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
