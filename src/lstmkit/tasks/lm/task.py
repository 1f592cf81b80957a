"""``lm`` on the task contract: token streams, BPTT windows with a carried hidden state, the network."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from lstmkit.data.vocab import Vocab
from lstmkit.errors import LstmkitError
from lstmkit.tasks.base import Callback, Prepared, Task
from lstmkit.tasks.base import Predictor as BasePredictor
from lstmkit.tasks.lm.config import SPEC, Level, LMConfig
from lstmkit.tasks.lm.data import (
    LM_SPECIALS,
    LMBatch,
    batchify,
    collate,
    in_order,
    join_tokens,
    read_stream,
    split_stream,
    stream_metrics,
    stream_rows,
    windows,
)
from lstmkit.tasks.lm.model import LanguageModel, LayerState, detach_state, resolved_cutoffs, resolved_softmax
from lstmkit.tasks.lm.predict import LMPredictor

if TYPE_CHECKING:
    from lstmkit.trainer import TrainResult


class CarriedState:
    """The hidden state carried between BPTT windows, one per mode.

    The training state is reset at the start of each epoch (:meth:`reset`, an ``on_epoch_start``
    callback) and at the stream's first window. The evaluation state and the sums ``eval_nll`` /
    ``eval_tokens`` (for :meth:`metrics`) are reset at the validation stream's first window, so each
    validation pass starts from zeros and carries through the stream in order.
    """

    def __init__(self, level: Level, alpha: float = 0.0, beta: float = 0.0) -> None:
        self.level, self.alpha, self.beta = level, alpha, beta
        self.train_state: list[LayerState] | None = None
        self.eval_state: list[LayerState] | None = None
        self.eval_nll, self.eval_tokens = 0.0, 0

    def reset(self, trainer: Any = None) -> None:
        self.train_state = None

    def loss(self, model: nn.Module, batch: list[LMBatch]) -> torch.Tensor:
        """Mean NLL per token over the windows in order, advancing the state; in training plus
        ``alpha · mean(hidden²)`` (AR) and ``beta · mean((raw_t - raw_{t-1})²)`` (TAR) per window."""
        net = cast(LanguageModel, getattr(model, "module", model))  # DDP-wrapped under torchrun
        if not model.training:
            return self._eval_loss(model, net, batch)
        loss: Any = 0.0
        n = sum(w.y.numel() for w in batch)
        for w in batch:
            if w.first:
                self.train_state = None
            out = model(w.x, self.train_state)
            self.train_state = detach_state(out.state)
            loss = loss + net.nll(out.hidden, w.y) / n
            if self.alpha:
                loss = loss + self.alpha * out.hidden.pow(2).mean() / len(batch)  # AR
            if self.beta:
                loss = loss + self.beta * (out.raw[:, 1:] - out.raw[:, :-1]).pow(2).mean() / len(batch)  # TAR
        return loss

    def _eval_loss(self, model: nn.Module, net: LanguageModel, batch: list[LMBatch]) -> torch.Tensor:
        nll, n = 0.0, 0
        for w in batch:
            if w.first:
                self.eval_state, self.eval_nll, self.eval_tokens = None, 0.0, 0
            out = model(w.x, self.eval_state)
            self.eval_state = detach_state(out.state)
            nll += float(net.nll(out.hidden, w.y))
            n += w.y.numel()
        self.eval_nll += nll
        self.eval_tokens += n
        return torch.tensor(nll / n)

    def metrics(self, model: nn.Module, batches: list[Any]) -> dict[str, float]:
        """Perplexity (word) or bits per char of the validation pass just run (token-weighted)."""
        return stream_metrics(self.eval_nll / max(1, self.eval_tokens), self.level)


class LanguageModelling(Task[LMConfig]):
    """Truncated BPTT over one token stream: ``--batch-size`` rows, windows of ``--bptt`` steps in
    order, the hidden state carried (detached) from window to window and reset each epoch."""

    spec = SPEC
    Predictor = LMPredictor

    def __init__(self, config: LMConfig):
        super().__init__(config)
        self.carried = CarriedState(config.level, config.alpha, config.beta)

    def _streams(self, data: Any, valid: Any) -> list[list[str]]:
        """[train, valid] or [train, valid, test] token streams (``--split`` parts of ``data`` without ``valid``)."""
        cfg = self.config
        tokens = read_stream(data, cfg)
        if valid is not None:
            return [tokens, read_stream(valid, cfg, "valid")]
        return split_stream(tokens, cfg.split, str(data) if isinstance(data, (str, os.PathLike)) else "data")

    def check(self, data: Any, valid: Any = None) -> None:
        self._streams(data, valid)

    def prepare(self, data: Any, valid: Any = None) -> Prepared:
        cfg = self.config
        train_toks, valid_toks, *test = self._streams(data, valid)
        vocab = Vocab.build([train_toks], min_freq=cfg.min_freq, max_size=cfg.max_vocab, specials=LM_SPECIALS)
        self._check_cutoffs(len(vocab))
        rows = cfg.train.batch_size
        train_set = windows(batchify(vocab.encode(train_toks), rows), cfg.bptt)
        valid_rows = stream_rows(len(valid_toks), cfg.eval_batch_size)  # as the final evaluation: one perplexity
        valid_set = windows(batchify(vocab.encode(valid_toks), valid_rows), cfg.bptt)
        sample = join_tokens(valid_toks[: 200 if cfg.level == "char" else 60], cfg.level).strip()
        return Prepared(
            train=train_set,
            valid=valid_set,
            collate=collate,
            dims={"vocab_size": len(vocab)},
            transforms={"vocab": vocab.to_json(), "sample": {"text": sample}},
            batch_sampler=in_order,
            extra={"valid": valid_toks, "test": test[0] if test else None},
        )

    def _check_cutoffs(self, vocab_size: int) -> None:
        if resolved_softmax(self.config, vocab_size) == "adaptive" and self.config.cutoffs:
            if max(resolved_cutoffs(self.config, vocab_size)) >= vocab_size:
                raise LstmkitError(
                    f"cutoffs (--cutoffs) must be below the vocabulary size {vocab_size}, "
                    f"got {','.join(map(str, self.config.cutoffs))}"
                )

    def build(self, dims: Mapping[str, Any]) -> nn.Module:
        return LanguageModel(self.config, dims)

    def loss(self, model: nn.Module, batch: list[LMBatch]) -> torch.Tensor:
        return self.carried.loss(model, batch)

    def metrics(self, model: nn.Module, batches: list[Any]) -> dict[str, float]:
        return self.carried.metrics(model, batches)

    def callbacks(self) -> list[Callback]:
        return [("on_epoch_start", self.carried.reset)]

    def state_dict(self) -> dict[str, Any]:
        """The training stream's carried hidden state: a run resumed mid-epoch goes on from it."""
        state = self.carried.train_state
        return {"train_state": [list(hc) for hc in state] if state is not None else []}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("train_state") or []
        self.carried.train_state = [(h, c) for h, c in saved] if saved else None

    def report(self, predictor: BasePredictor[LMConfig], prep: Prepared, result: TrainResult) -> dict[str, Any]:
        """The validation stream (and a ``--split`` test part) evaluated with ``--eval-batch-size`` rows."""
        assert isinstance(predictor, LMPredictor)
        out = {"valid": predictor.evaluate_tokens(prep.extra["valid"])}
        if prep.extra["test"] is not None:
            out["test"] = predictor.evaluate_tokens(prep.extra["test"])
        return out


TASK = LanguageModelling
