"""The tagger on ONNX Runtime: :class:`~lstmkit.tasks.tag.predict.TagPredictor` with its network
(:meth:`emissions`) running the export's ``emissions`` graph and its CRF (:meth:`crf_decode`) decoding
in NumPy (:mod:`lstmkit.runtime.decode`) with the CRF scores saved in the export's ``extras``."""

from __future__ import annotations

import numpy as np

from lstmkit.errors import ModelFolderError
from lstmkit.runtime import decode as rd
from lstmkit.runtime.base import RuntimePredictor
from lstmkit.tasks.tag.data import TagArrays
from lstmkit.tasks.tag.decode import CrfDecode
from lstmkit.tasks.tag.predict import TagPredictor


class TagRuntime(RuntimePredictor, TagPredictor):
    def setup(self) -> None:
        super().setup()
        self.crf: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # start (K,), end (K,), A (K, K)
        if self.config.crf:
            k = len(self.tags)
            try:
                start, end, trans = (
                    np.asarray(self.extras[n], dtype=np.float32) for n in ("start", "end", "transitions")
                )
            except (KeyError, TypeError, ValueError) as e:
                raise ModelFolderError(f"{self.path / 'config.json'}: no CRF scores in extras ({e})") from None
            if start.shape != (k,) or end.shape != (k,) or trans.shape != (k, k):
                raise ModelFolderError(f"{self.path / 'config.json'}: CRF scores of the wrong shape for {k} tags")
            self.crf = (start, end, trans)

    def emissions(self, batch: TagArrays) -> np.ndarray:
        return self.graphs["emissions"](**batch._asdict())[0]  # (B, T, K)

    def crf_decode(self, em: np.ndarray, mask: np.ndarray, nbest: int, scores: bool) -> CrfDecode:
        assert self.crf is not None
        start, end, trans = self.crf
        em = em.astype(np.float32)  # (B, T, K)
        paths, _ = rd.viterbi(em, mask, start, end, trans)
        span_scores = rd.CrfScores(em, mask, start, end, trans) if scores else None  # float64 sums
        best, log_z = None, None
        if nbest > 1:
            best = rd.nbest(em, mask, start, end, trans, nbest)
            log_z = rd.forward_backward(em, mask, start, end, trans)[2].astype(np.float64)  # (B,), float32 sums
        return CrfDecode(paths, span_scores, best, log_z)
