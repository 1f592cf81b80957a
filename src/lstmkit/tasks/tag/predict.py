"""The tagger's predictor: tags, entities, confidences and n-best paths per sentence; evaluation;
CoNLL output with every input line kept in place; gates for ``lstmkit inspect``.

Importable without torch: the network runs in two small methods on NumPy arrays, :meth:`TagPredictor.emissions`
and :meth:`TagPredictor.crf_decode`, which :class:`lstmkit.runtime.tag.TagRuntime` overrides (ONNX Runtime and
NumPy); everything else (encoding, batching, spans, confidences, output) is shared.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstmkit.data.conll import Sentence, check_scheme, convert, read_for_tagging
from lstmkit.errors import DataError, LstmkitError, ModelFolderError, warn
from lstmkit.tasks.base import Predictor
from lstmkit.tasks.tag.config import SPEC, TagConfig, TagEvaluate, TagPredict
from lstmkit.tasks.tag.data import (
    TagArrays,
    TagEncoder,
    check_known_tags,
    check_tokens,
    collate,
    pad_examples,
    read_data,
    to_batch,
)
from lstmkit.tasks.tag.decode import CrfDecode, Decoded, decode_outputs, join_pieces, torch_crf_decode
from lstmkit.tasks.tag.metrics import summary, tag_metrics

if TYPE_CHECKING:  # torch is imported where the network runs: the runtime subclass runs ONNX instead
    from lstmkit.tasks.tag.model import BiLSTMTagger

DEFAULT_SAMPLE = "EU rejects German call to boycott British lamb .".split()


class Entity(NamedTuple):
    """A chunk, as spaCy's ``doc.ents``: its ``text`` (tokens joined by spaces), ``label`` (type),
    token ``start`` and ``end`` (exclusive), and ``confidence``: the probability that the model tags
    exactly this span as this entity (see :mod:`lstmkit.tasks.tag.decode`)."""

    text: str
    label: str
    start: int
    end: int
    confidence: float


class Alternative(NamedTuple):
    """One of the n best tag sequences (in the data's scheme) and its probability p(y | x)."""

    tags: list[str]
    probability: float


@dataclass
class TagPrediction:
    """The tags of one sentence, in the training data's scheme.

    ``entities``: the chunks (None for plain labels such as POS tags); ``confidence``: the marginal
    probability of each predicted tag (when asked); ``nbest``: the best paths, best first (when asked).
    An empty sentence gives empty lists.
    """

    tokens: list[str]
    tags: list[str]
    entities: list[Entity] | None = None
    confidence: list[float] | None = None
    nbest: list[Alternative] | None = None


def tokens_of(item: Any, i: int) -> list[str]:
    """The tokens of one input: a string is one sentence (whitespace-tokenised), a list or tuple of
    strings is a tokenised sentence, a :class:`Sentence` (read from a file) gives its tokens. Anything
    else, a token that is not a string or an empty token raises :class:`DataError` naming it."""
    if isinstance(item, Sentence):
        return list(item.tokens)
    if isinstance(item, str):
        return item.split()
    if isinstance(item, (list, tuple)):
        return check_tokens(item, f"input {i + 1}")
    raise DataError(f"input {i + 1}: expected a sentence (a string or a list of tokens), got {type(item).__name__}")


def predict_format(fmt: str, path: str) -> str:
    """``--format auto``: ``.conllu`` -> conllu, ``.conll`` -> conll, anything else (and ``-``) -> text.
    (A ``.txt`` file may hold either raw text or CoNLL columns, e.g. CoNLL-2003: pass --format conll.)"""
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower() if path != "-" else ""
    return {".conllu": "conllu", ".conll": "conll"}.get(suffix, "text")


class TagPredictor(Predictor[TagConfig]):
    """``predict(sentences)`` -> ``[TagPrediction]``; ``evaluate(data)``; gates for inspect.

    Inputs: ``predict("EU rejects German call")`` tags one sentence; a list of strings is a list of
    sentences; a list of token lists is pre-tokenised sentences; a ``Path`` is a file (``--format``).
    """

    spec = SPEC
    num_directions = 2

    def setup(self) -> None:
        if self.config.scheme == "auto":
            raise ModelFolderError("config.json: the data's scheme is 'auto' (it is resolved when training)")
        self.encoder = TagEncoder.from_transforms(self.config, self.transforms, self.dims)
        self.tags = self.encoder.tags  # the model's tags (its scheme)
        self.scheme = self.config.scheme  # the data's scheme: predictions are written in it
        sample = self.transforms.get("sample", {})
        self.sample = [str(t) for t in sample.get("tokens", [])] if isinstance(sample, dict) else []

    @property
    def net(self) -> BiLSTMTagger:
        """The network, typed."""
        from lstmkit.tasks.tag.model import BiLSTMTagger

        assert isinstance(self.model, BiLSTMTagger)
        return self.model

    # ------------------------------------------------------------------ the network
    def emissions(self, batch: TagArrays) -> np.ndarray:
        """The network: a padded batch (the fields :meth:`BiLSTMTagger.emissions` reads: words, casing,
        lengths, chars, char_lengths, char_index) -> tag scores (B, T, K) float32."""
        import torch

        with torch.no_grad():
            return self.net.emissions(to_batch(batch)).float().numpy()

    def crf_decode(self, em: np.ndarray, mask: np.ndarray, nbest: int, scores: bool) -> CrfDecode:
        """The CRF on emissions em (B, T, K) float32 and mask (B, T) bool: best paths, marginals and span
        probabilities (``scores``), the ``nbest`` best paths and log Z (``nbest`` > 1)."""
        assert self.net.crf is not None
        return torch_crf_decode(self.net.crf, em, mask, nbest, scores)

    def decode(self, batch: TagArrays, options: TagPredict) -> list[Decoded]:
        """Predictions (model tag ids) of one padded batch."""
        em = self.emissions(batch)  # (B, T, K)
        chunks = self.scheme != "none"
        crf = self.crf_decode(em, batch.mask, options.nbest, chunks or options.confidence) if self.config.crf else None
        return decode_outputs(em, batch.lengths.tolist(), self.tags, crf, options.nbest, options.confidence, chunks)

    # ------------------------------------------------------------------ predict
    def read(self, path: str, options: TagPredict) -> list[Sentence]:
        return read_for_tagging(path, predict_format(options.format, path))  # type: ignore[arg-type]

    def _output_tags(self, ids: list[int]) -> list[str]:
        tags = [self.tags[k] for k in ids]
        return convert(tags, self.scheme) if self.scheme != "none" else tags

    def _prediction(self, tokens: list[str], d: Decoded) -> TagPrediction:
        chunks = self.scheme != "none"
        ents = [Entity(" ".join(tokens[s.start : s.end + 1]), s.type, s.start, s.end + 1, p) for s, p in d.entities]
        alts = [Alternative(self._output_tags(path), p) for path, p in d.nbest] if d.nbest is not None else None
        return TagPrediction(tokens, self._output_tags(d.path), ents if chunks else None, d.token_probs, alts)

    def _empty(self, options: TagPredict) -> TagPrediction:
        return TagPrediction(
            [],
            [],
            [] if self.scheme != "none" else None,
            [] if options.confidence else None,
            [] if options.nbest > 1 else None,
        )

    def max_len(self, override: int | None = None) -> int | None:
        """The longest sentence tagged whole: ``override`` (a predict / evaluate option), else the model's."""
        return override if override is not None else self.config.max_len

    def predict_items(
        self, items: list[Any], options: TagPredict, source: str = "", names: Sequence[str] | None = None
    ) -> list[TagPrediction]:
        """One prediction per input, in order (an empty sentence: empty lists). A sentence over
        ``max_len`` tokens is tagged in consecutive pieces of at most ``max_len`` (one warning line,
        naming ``source`` and, for the first such sentence, ``names[i]`` or ``input i``)."""
        if options.nbest > 1 and not self.config.crf:
            raise LstmkitError("--nbest needs a CRF model (this one was trained with --no-crf)")
        sents = [tokens_of(item, i) for i, item in enumerate(items)]
        limit = self.max_len(options.max_len)
        pieces: list[tuple[int, int, list[str]]] = []  # (input, offset, tokens); an empty sentence has none
        for i, toks in enumerate(sents):
            step = limit if limit is not None else max(1, len(toks))
            pieces += [(i, a, toks[a : a + step]) for a in range(0, len(toks), step)]
        long = [i for i, toks in enumerate(sents) if limit is not None and len(toks) > limit]
        if long:
            top = max(len(sents[i]) for i in long)
            first = names[long[0]] if names else f"input {long[0] + 1}"
            warn(
                f"{source + ': ' if source else ''}{len(long)} of {len(sents)} sentences are longer than --max-len "
                f"{limit} tokens: each is tagged in pieces of at most {limit} (the longest has {top} tokens; first: {first})"
            )
        examples = [self.encoder.encode(toks, None, f"input {i + 1}") for i, _, toks in pieces]
        order = sorted(range(len(pieces)), key=lambda j: len(pieces[j][2]))  # similar lengths batched together
        decoded: dict[int, Decoded] = {}
        for start in range(0, len(order), options.batch_size):
            idx = order[start : start + options.batch_size]
            for j, d in zip(idx, self.decode(pad_examples([examples[j] for j in idx]), options)):
                decoded[j] = d
        parts: dict[int, list[tuple[int, Decoded]]] = {}
        for j, (i, a, _) in enumerate(pieces):
            parts.setdefault(i, []).append((a, decoded[j]))
        results = [self._empty(options) for _ in sents]
        for i, ps in parts.items():
            results[i] = self._prediction(sents[i], join_pieces(ps, options.nbest))
        return results

    def format_outputs(self, items: list[Any], outputs: list[TagPrediction], options: TagPredict) -> str:
        """CoNLL columns: each token line of the input (the token alone for text) plus the predicted
        tag (one column per path with --nbest, after a ``# nbest probabilities:`` line) and its
        marginal with --confidence; lines that are not tokens (CoNLL-U comments, multi-word ranges,
        empty nodes, -DOCSTART-) written back in place; a blank line after each sentence (an empty
        sentence is a blank line alone)."""
        lines: list[str] = []
        for item, out in zip(items, outputs):
            lines += _conll_block(item, out)
        return "\n".join(lines) + ("\n" if lines else "")

    # ------------------------------------------------------------------ evaluate
    def evaluate_data(self, data: Any, options: TagEvaluate) -> dict[str, Any]:
        """Token accuracy, and for chunk tags entity precision / recall / F1 per type and micro
        (seqeval), of tagged ``data``: a file (read as in training unless ``options`` say otherwise)
        or ``[(tokens, tags)]`` / ``[Sentence]``."""
        sents, source = read_data(data, self.config, fmt=options.format, tag_column=options.tag_column, tag=options.tag)
        if self.scheme != "none":
            check_scheme(sents, self.scheme, source)
        from_file = isinstance(data, (str, os.PathLike))
        check_known_tags(sents, self.tags, self.scheme != "none", source, from_file)
        names = [f"line {s.lines[0]}" if from_file else f"sentence {i + 1}" for i, s in enumerate(sents)]
        opts = TagPredict(max_len=options.max_len)
        pred = self.predict_items([s.tokens for s in sents], opts, source, names)
        return tag_metrics([list(s.tags or []) for s in sents], [p.tags for p in pred], self.scheme)

    def format_metrics(self, metrics: dict[str, Any]) -> str:
        return summary(metrics)

    # ------------------------------------------------------------------ lstmkit inspect
    def inspect_sample(self, data: str | None = None, index: int = 0) -> list[str]:
        """Tokens of the ``index``-th non-empty sentence of ``data`` (predict-input format), or the
        sentence saved at training time."""
        if data is None:
            return self.sample or list(DEFAULT_SAMPLE)
        sents = [s.tokens for s in self.read(data, TagPredict()) if s.tokens]
        if not 0 <= index < len(sents):
            raise DataError(f"{data}: --index {index} out of range ({len(sents)} sentences)")
        return sents[index]

    def step_labels(self, sample: list[str] | str) -> list[str]:
        """The tokens :meth:`trace_gates` reads: the sentence's, its first ``--max-len`` only."""
        return tokens_of(sample, 0)[: self.max_len()]

    def trace_gates(self, sample: list[str] | str) -> list[Any]:
        """Gates of the word BiLSTM on one sentence (one ``lstmkit.nn.Gates`` per layer × direction,
        fields (1, T, H))."""
        import torch

        batch = collate([self.encoder.encode(self.step_labels(sample), None, "sample")])
        with torch.no_grad():
            x = self.net.features(batch)  # (1, T, F)
            _, gates = self.net.lstm(x, batch.lengths, return_gates=True)
        return gates


def _conll_block(item: Any, out: TagPrediction) -> list[str]:
    """The output lines of one sentence (see :meth:`TagPredictor.format_outputs`)."""
    sent = item if isinstance(item, Sentence) else None
    columns = sent.columns if sent is not None and sent.columns else [[t] for t in out.tokens]
    carried = list(sent.carried) if sent is not None else []
    sep = sent.sep if sent is not None else " "
    paths = [a.tags for a in out.nbest] if out.nbest else [out.tags]
    lines = []
    if out.nbest:
        lines.append("# nbest probabilities: " + " ".join(f"{a.probability:.4f}" for a in out.nbest))
    for t, cols in enumerate(columns):
        while carried and carried[0][0] <= t:
            lines.append(carried.pop(0)[1])
        row = list(cols) + [tags[t] for tags in paths]
        if out.confidence:
            row.append(f"{out.confidence[t]:.4f}")
        lines.append(sep.join(row))
    lines += [line for _, line in carried]
    return [*lines, ""]
