"""Sequence labelling (NER, POS, chunks) with a BiLSTM-CRF: ``lstmkit tag train|evaluate|predict``.

::

    CoNLL / CoNLL-U ──► sentences, scheme detected ──► TagEncoder (words, chars, tags; training part)
        ──► word + char (CNN | BiLSTM) + casing features ──► BiLSTM ──► emissions ──► CRF (or softmax)
        ──► model folder: config.json, model.safetensors, words.json, chars.json, tags.json, sample.json

Modules: ``config`` (settings, torch-free), ``data`` (reading, tag sets, the encoder, batches),
``model`` (the network), ``decode`` (paths, marginals, entity confidences), ``metrics`` (seqeval),
``task`` (the contract), ``predict`` (the predictor and its CoNLL output).
"""

from lstmkit.tasks.tag.config import TagConfig, TagEvaluate, TagPredict

__all__ = ["TagConfig", "TagEvaluate", "TagPredict"]
