"""The classifier's predictor: labels and probabilities per text, evaluation, gates for inspect."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmkit.data.arrays import pad_arrays
from lstmkit.data.labelled import LabelledText, read_unlabelled
from lstmkit.errors import DataError
from lstmkit.io import check_writable
from lstmkit.tasks.base import Predictor
from lstmkit.tasks.classify.config import SPEC, ClassifyConfig, ClassifyEvaluate, ClassifyPredict
from lstmkit.tasks.classify.data import Encoder, at, read_rows, texts_of
from lstmkit.tasks.classify.metrics import classification_metrics

if TYPE_CHECKING:  # torch is imported where the network runs: the runtime subclass runs ONNX instead
    from lstmkit.tasks.classify.model import SequenceClassifier


class ClassifyPredictor(Predictor[ClassifyConfig]):
    """``predict(texts)`` -> ``[{"label", "probabilities"}]``; ``predict_proba``; ``evaluate(data)``.

    A text is one input (``predict("great fun")`` classifies the sentence); an empty text gives
    ``{"label": None, "probabilities": {}}``, so outputs stay aligned with inputs.
    """

    spec = SPEC
    model: SequenceClassifier

    def setup(self) -> None:
        self.encoder = Encoder.from_transforms(self.config, self.transforms, self.dims)
        self.labels = self.encoder.labels
        self.sample = str(self.transforms.get("sample", {}).get("text", ""))

    # ------------------------------------------------------------------ predict
    def predict_proba(self, texts: str | list[str], source: str = "input") -> np.ndarray:
        """(N, C) class probabilities, columns in the order of ``self.labels`` (rows of empty texts: 0);
        a str is one text (shape (1, C)). Texts longer than ``--max-len`` are cut (one warning)."""
        texts = texts_of(texts)
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        encoded = self.encoder.encode_many([texts[i] for i in keep], [f"input {i + 1}" for i in keep], source)
        seqs = dict(zip(keep, encoded))
        order = sorted(keep, key=lambda i: len(seqs[i]))
        for s in range(0, len(order), 256):
            idx = order[s : s + 256]
            x, lengths = pad_arrays([seqs[i] for i in idx])  # (B, T), (B,)
            logits = self.logits(x, lengths).astype(np.float64)  # (B, C)
            e = np.exp(logits - logits.max(-1, keepdims=True))
            probs[idx] = e / e.sum(-1, keepdims=True)
        return probs

    def logits(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The network: x (B, T) ids (or values), lengths (B,) -> logits (B, C) float32."""
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()

    def read(self, path: str, options: ClassifyPredict) -> list[str]:
        return read_unlabelled(path, options.text_column or self.config.text_column)

    def predict_items(self, items: list[str], options: ClassifyPredict) -> list[dict[str, Any]]:
        texts = texts_of(items)
        probs = self.predict_proba(texts)
        return [
            {"label": self.labels[int(p.argmax())], "probabilities": dict(zip(self.labels, map(float, p)))}
            if t.strip()
            else {"label": None, "probabilities": {}}
            for t, p in zip(texts, probs)
        ]

    def format_outputs(self, items: list[str], outputs: list[dict[str, Any]], options: ClassifyPredict) -> str:
        """CSV: text, label, p_<label> per label (empty cells for an empty text)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["text", "label"] + [f"p_{lab}" for lab in self.labels])
        for text, o in zip(items, outputs):
            probs = [f"{o['probabilities'][lab]:.6f}" if o["label"] is not None else "" for lab in self.labels]
            w.writerow([text, o["label"] or "", *probs])
        return buf.getvalue()

    # ------------------------------------------------------------------ evaluate
    def evaluate_data(self, data: Any, options: ClassifyEvaluate) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix of
        labelled ``data`` (a file read with the training options, or ``[(text, label), ...]``)."""
        if options.plot is not None:
            check_writable(options.plot, "--plot")
        rows, source = read_rows(data, self.config)
        return self.evaluate_rows(rows, source, options.plot)

    def evaluate_rows(self, rows: list[LabelledText], source: str, plot: str | None = None) -> dict[str, Any]:
        y = np.array([self.encoder.label_id(r.label, at(source, r.line)) for r in rows])
        pred = self.predict_proba([r.text for r in rows], source).argmax(1)
        m = classification_metrics(y, pred, labels=self.labels)
        if plot is not None:
            from lstmkit.plots import plot_confusion_matrix

            plot_confusion_matrix(np.array(m["confusion_matrix"]), self.labels, plot)
        return m

    def format_metrics(self, m: dict[str, Any]) -> str:
        lines = [
            f"accuracy  {m['accuracy']:.4f}",
            f"macro-F1  {m['macro_f1']:.4f}",
            f"examples  {m['n']}",
            f"{'class':<20} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
        ]
        for name, c in m["per_class"].items():
            lines.append(
                f"{name[:20]:<20} {c['precision']:>9.4f} {c['recall']:>9.4f} {c['f1']:>9.4f} {c['support']:>8d}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ lstmkit inspect
    @property
    def num_directions(self) -> int:
        return self.config.lstm.directions

    def inspect_sample(self, data: str | None = None, index: int = 0) -> str:
        """The ``index``-th text of ``data`` (predict-input format), or the sample saved at training time."""
        if data is None:
            if not self.sample:
                raise DataError("this model folder has no saved sample: pass --data")
            return self.sample
        texts = [t for t in read_unlabelled(data, self.config.text_column) if t.strip()]
        if not 0 <= index < len(texts):
            raise DataError(f"{data}: --index {index} out of range ({len(texts)} texts)")
        return texts[index]

    def step_labels(self, sample: str) -> list[str]:
        return self.encoder.tokens(sample)

    def trace_gates(self, sample: str) -> list[Any]:
        """The LSTM's gates on one text (one ``lstmkit.nn.Gates`` per layer × direction, fields (1, T, H))."""
        import torch

        x = torch.from_numpy(self.encoder.encode(sample))[None]  # (1, T)
        with torch.no_grad():
            emb = self.model.embed_inputs(x)  # (1, T, E)
            _, _, gates = self.model.lstm(emb, lengths=torch.tensor([x.size(1)]), return_gates=True)
        return gates
