"""The translator: beam-search translations, corpus BLEU / chrF, attention plots, gates for inspect.

::

    mt = lstmkit.load("runs/mt")                          # a TranslatePredictor
    mt.predict("Ein Hund rennt.")                         # [{"text": "A dog runs.", "score": ..., "tokens": [...]}]
    mt.predict(["Ein Hund rennt.", ""], nbest=3)          # + "nbest": 3 hypotheses each; "" -> empty output
    mt.evaluate(("val.de", "val.en"), beam=5)             # {"bleu", "chrf", signatures, ...}
    mt.translate(["Ein Hund rennt."], nbest=2)[0][0]      # Translation(..., attention (T', S), source_tokens)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from lstmkit.data.arrays import pad_arrays
from lstmkit.data.files import read_lines
from lstmkit.data.parallel import TextCodec, encode_source
from lstmkit.errors import DataError, LstmkitError, ModelFolderError, warn
from lstmkit.runtime.decode import DecodeOptions
from lstmkit.runtime.decode import Hypothesis as ArrayHypothesis
from lstmkit.tasks.base import Predictor
from lstmkit.tasks.translate.config import (
    SPEC,
    DecodeSettings,
    TranslateConfig,
    TranslateEvaluate,
    TranslatePredict,
)
from lstmkit.tasks.translate.data import read_pairs
from lstmkit.tasks.translate.metrics import corpus_scores

if TYPE_CHECKING:  # torch is imported where the network runs: the runtime subclass runs ONNX instead
    import torch

    from lstmkit.tasks.translate.decode import Hypothesis
    from lstmkit.tasks.translate.model import Seq2Seq


class Translation(NamedTuple):
    """One hypothesis in full: detokenised text, target tokens, normalised score, log-probability,
    attention (len(tokens) + 1, len(source_tokens)) (last row: </s>, if produced; a float32
    ``torch.Tensor`` from the torch predictor, a NumPy array from :mod:`lstmkit.runtime`), source tokens."""

    text: str
    tokens: list[str]
    score: float
    logprob: float
    attention: Any
    source_tokens: list[str]


def _one_sentence(sample: Any) -> str:
    if not isinstance(sample, str):
        raise DataError(f"expected one source sentence (a string), got {type(sample).__name__}")
    return sample


def _plain(t: Translation) -> dict[str, Any]:
    return {"text": t.text, "score": float(t.score), "tokens": list(t.tokens)}


def codecs_from_transforms(
    cfg: TranslateConfig, transforms: dict[str, Any], dims: dict[str, Any]
) -> tuple[TextCodec, TextCodec]:
    """The (source, target) codecs saved by training, checked against the network's vocabulary sizes."""
    names = ["source_tokenizer"] if cfg.shared_vocab else ["source_tokenizer", "target_tokenizer"]
    codecs = []
    for name in names:
        if name not in transforms:
            raise ModelFolderError(f"{name}.json: missing")
        try:
            codecs.append(TextCodec.from_json(transforms[name]))
        except ModelFolderError as e:
            raise ModelFolderError(f"{name}.json: {e}") from None
    src, tgt = codecs[0], codecs[-1]
    for name, codec, key in (("source_tokenizer", src, "src_vocab"), (names[-1], tgt, "tgt_vocab")):
        if len(codec) != int(dims[key]):
            raise ModelFolderError(f"{name}.json: {len(codec)} ids, the model was built for {dims[key]}")
    return src, tgt


class TranslatePredictor(Predictor[TranslateConfig]):
    """``predict(sentences)`` -> ``[{"text", "score", "tokens"(, "nbest")}]``; ``evaluate(pairs)`` -> BLEU, chrF.

    A string is one sentence; an empty sentence gives ``{"text": "", "score": None, "tokens": []}`` so
    outputs stay aligned with inputs. Decoding is deterministic (beam search, default beam 5).
    """

    spec = SPEC
    num_directions = 2  # the encoder is bidirectional
    #: whether inputs over ``--max-length`` get their warning (off while training reports on data it warned about)
    warn_limits = True

    @property
    def net(self) -> Seq2Seq:
        """The network, typed."""
        return cast("Seq2Seq", self.model)

    def setup(self) -> None:
        self.src_codec, self.tgt_codec = codecs_from_transforms(self.config, self.transforms, self.dims)
        self.sample = str(self.transforms.get("sample", {}).get("source", ""))

    # ------------------------------------------------------------------ decoding
    def decode_options(
        self, beam: int = 5, nbest: int = 1, alpha: float | None = None, max_ratio: float | None = None
    ) -> DecodeOptions:
        """Decoding options, checked as predict's declared options (``--beam`` etc.); ``alpha`` and
        ``max_ratio`` default to the model's config."""
        opts = TranslatePredict().build(beam=beam, nbest=nbest, alpha=alpha, max_ratio=max_ratio)
        return self._decode_options(opts, opts.nbest)

    def _decode_options(self, opts: DecodeSettings, nbest: int) -> DecodeOptions:
        cfg = self.config
        return DecodeOptions(
            beam=opts.beam,
            nbest=nbest,
            alpha=cfg.alpha if opts.alpha is None else opts.alpha,
            max_ratio=cfg.max_ratio if opts.max_ratio is None else opts.max_ratio,
            bos_id=self.tgt_codec.bos_id,
            eos_id=self.tgt_codec.eos_id,
        )

    def _to_device(self, device: str) -> torch.device:
        """Check ``--device`` and move the network there."""
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise LstmkitError("device cuda (--device cuda): CUDA is not available")
        dev = torch.device(device)
        if next(self.model.parameters()).device != dev:
            self.model.to(dev)
        return dev

    @staticmethod
    def sentences(inputs: Any) -> list[str]:
        """The one-item rule: a string is ONE sentence, a list or tuple holds sentences; anything else
        (or an item that is not a string) is a DataError naming it."""
        if isinstance(inputs, str):
            return [inputs]
        if not isinstance(inputs, (list, tuple)):
            raise DataError(f"expected a source sentence or a list of them, got {type(inputs).__name__}")
        for i, s in enumerate(inputs, start=1):
            if not isinstance(s, str):
                raise DataError(f"input {i}: expected a source sentence (a string), got {type(s).__name__}")
        return list(inputs)

    def translate(
        self,
        sentences: str | list[str],
        beam: int = 5,
        nbest: int = 1,
        alpha: float | None = None,
        max_ratio: float | None = None,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> list[list[Translation]]:
        """n-best translations (best first) of each sentence (a string is one sentence), with scores and
        attention weights; an empty sentence gets an empty list. The options are predict's, checked
        the same way."""
        opts = TranslatePredict().build(
            beam=beam, nbest=nbest, alpha=alpha, max_ratio=max_ratio, batch_size=batch_size, device=device
        )
        return self._translate(self.sentences(sentences), opts, opts.nbest)

    def _translate(
        self, sentences: list[str], opts: DecodeSettings, nbest: int, where: list[str] | None = None
    ) -> list[list[Translation]]:
        """:meth:`translate` with checked options; ``where`` names each sentence in warnings."""
        dopts = self._decode_options(opts, nbest)
        self._to_device(opts.device)  # an unusable --device fails before any work
        keep = [i for i, s in enumerate(sentences) if s.strip()]
        limit = self.config.max_length
        pieces = {i: encode_source(self.src_codec, sentences[i], limit) for i in keep}
        name = (lambda i: where[i]) if where is not None else (lambda i: f"input {i + 1}")
        cut = [i for i in keep if pieces[i][1]]
        if cut and self.warn_limits:
            warn(
                f"{len(cut)} sentence(s) longer than the model's --max-length ({limit} tokens) were truncated to "
                f"{limit} tokens (the first: {name(cut[0])})"
            )
        unknown = [i for i in keep if all(t == self.src_codec.unk_id for t in pieces[i][0])]
        if unknown:
            warn(f"{len(unknown)} sentence(s) hold no token the model knows (the first: {name(unknown[0])})")
        order = sorted(keep, key=lambda i: len(pieces[i][0]))  # similar lengths together
        out: list[list[Translation]] = [[] for _ in sentences]
        for start in range(0, len(order), opts.batch_size):
            chunk = order[start : start + opts.batch_size]
            src, src_len = pad_arrays([np.asarray(pieces[i][0], dtype=np.int64) for i in chunk])  # (B, S), (B,)
            hyps = self.decode_batch(src, src_len, dopts, opts.device)
            for i, h in zip(chunk, hyps):
                out[i] = [self._translation(x, pieces[i][0]) for x in h]
        return out

    def decode_batch(
        self, src: np.ndarray, src_len: np.ndarray, dopts: DecodeOptions, device: str = "cpu"
    ) -> Sequence[Sequence[Hypothesis | ArrayHypothesis]]:
        """The network and its search: src (B, S) int64 ids (0-padded), src_len (B,) int64 -> up to
        ``dopts.nbest`` hypotheses per sentence, best first (ids, score, logprob, attention (T', S_b))."""
        import torch

        from lstmkit.tasks.translate.decode import decode

        dev = self._to_device(device)
        return decode(self.net, torch.from_numpy(src).to(dev), torch.from_numpy(src_len).to(dev), dopts)

    def _translation(self, h: Hypothesis | ArrayHypothesis, src_ids: list[int]) -> Translation:
        return Translation(
            self.tgt_codec.decode(h.ids),
            self.tgt_codec.id_tokens(h.ids),
            h.score,
            h.logprob,
            h.attention,
            self.src_codec.id_tokens(src_ids),
        )

    # ------------------------------------------------------------------ predict
    def read(self, path: str, options: TranslatePredict) -> list[str]:
        """Source sentences, one per line (``-``: standard input); empty lines stay, as empty inputs; a
        file without any text is a DataError."""
        return [s.strip() for s in read_lines(path, "source sentences (one per line)")]

    def predict_items(self, items: list[Any], options: TranslatePredict) -> list[dict[str, Any]]:
        if options.plot_attention and Path(options.plot_attention).is_dir():
            raise DataError(f"--plot-attention {options.plot_attention}: is a folder, not a PNG file")
        done = self._translate(self.sentences(items), options, options.nbest)
        if options.plot_attention:
            self.plot_attention(done, options.plot_index, options.plot_attention)
        outputs = []
        for hyps in done:
            best: dict[str, Any] = _plain(hyps[0]) if hyps else {"text": "", "score": None, "tokens": []}
            if options.nbest > 1:
                best["nbest"] = [_plain(t) for t in hyps]
            outputs.append(best)
        return outputs

    def plot_attention(self, done: list[list[Translation]], index: int, path: str) -> None:
        """The attention heatmap of the best translation of input ``index`` into ``path``."""
        from lstmkit.plots import plot_attention

        if not 0 <= index < len(done) or not done[index]:
            raise LstmkitError(f"plot_index (--plot-index) {index}: no such non-empty input line")
        t = done[index][0]
        plot_attention(t.attention, t.source_tokens, t.tokens, path, title=t.text[:80])
        print(f"attention plot: {path}", file=sys.stderr)

    def format_outputs(self, items: list[Any], outputs: list[dict[str, Any]], options: TranslatePredict) -> str:
        """One translation per line (empty for an empty input); ``--scores``: ``score<TAB>text``;
        ``--nbest N`` > 1: ``rank<TAB>score<TAB>text`` lines and a blank line after each sentence."""
        lines = []
        for o in outputs:
            if options.nbest > 1:
                lines += [f"{k}\t{t['score']:.4f}\t{t['text']}" for k, t in enumerate(o["nbest"])] + [""]
            elif options.scores:
                lines.append(f"{o['score']:.4f}\t{o['text']}" if o["score"] is not None else "")
            else:
                lines.append(o["text"])
        return "".join(line + "\n" for line in lines)

    # ------------------------------------------------------------------ evaluate
    def evaluate_data(self, data: Any, options: TranslateEvaluate) -> dict[str, Any]:
        """Corpus BLEU and chrF (sacrebleu on detokenised text) with their signatures, of sentence pairs
        in any input form (a TSV file, a pair of files, ``[(source, target), ...]``); pairs with an
        empty side are skipped and counted."""
        pairs, name = read_pairs(data)
        where = [f"{name} {pairs.unit} {n}" for n in pairs.line_numbers]
        done = self._translate(pairs.sources, options, 1, where)
        hyps = [n[0].text for n in done]
        result = corpus_scores(hyps, pairs.targets, self.config.lowercase, signatures=True)
        result.update(sentences=len(pairs), skipped_empty=pairs.skipped_empty, beam=options.beam)
        return result

    def format_metrics(self, m: dict[str, Any]) -> str:
        return "\n".join(
            [
                f"BLEU = {m['bleu']:.2f}  ({m['bleu_signature']})",
                f"chrF = {m['chrf']:.2f}  ({m['chrf_signature']})",
                f"sentences = {m['sentences']}, skipped empty pairs = {m['skipped_empty']}, beam = {m['beam']}",
            ]
        )

    # ------------------------------------------------------------------ lstmkit inspect
    def inspect_sample(self, data: str | None = None, index: int = 0) -> str:
        """One source sentence: line ``index`` (0-based, non-empty lines) of ``data``, or the saved sample."""
        if data is None:
            if not self.sample:
                raise DataError("this model folder has no saved sample: pass --data")
            return self.sample
        lines = [s.strip() for s in read_lines(data, "source sentences (one per line)") if s.strip()]
        if not 0 <= index < len(lines):
            raise DataError(f"{data}: --index {index} out of range ({len(lines)} non-empty lines)")
        return lines[index]

    def step_labels(self, sample: str) -> list[str]:
        """The source tokens the encoder steps over."""
        sample = _one_sentence(sample)
        return self.src_codec.id_tokens(encode_source(self.src_codec, sample, self.config.max_length)[0])

    def trace_gates(self, sample: str) -> list[Any]:
        """Encoder gate activations for one source sentence: one ``lstmkit.nn.Gates`` per layer × direction
        (index layer * 2 + direction), each field (1, S, H)."""
        sample = _one_sentence(sample)
        import torch

        ids = encode_source(self.src_codec, sample, self.config.max_length)[0]
        src = torch.tensor([ids], dtype=torch.long, device=next(self.model.parameters()).device)  # (1, S)
        with torch.no_grad():
            x = self.net.src_emb(src)  # (1, S, E)
            _, _, gates = self.net.encoder(x, lengths=torch.tensor([len(ids)]), return_gates=True)
        return gates
