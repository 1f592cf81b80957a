"""Text (and number-sequence) classification: ``lstmkit classify train|evaluate|predict``.

::

    CSV/TSV/"label<TAB>text" ──► tokenizer (word | whitespace | char | bpe) ──► vocabulary ids
        ──► length-bucketed padded batches ──► embedding → (Bi)LSTM → pooling → linear ──► the trainer
        ──► model folder: config.json, model.safetensors, vocab.json, tokenizer.json, labels.json

Modules: ``config`` (settings, torch-free), ``data`` (reading, the encoder), ``model`` (the
network), ``task`` (the contract), ``predict`` (the predictor), ``metrics``.
"""

from lstmkit.tasks.classify.config import ClassifyConfig, ClassifyEvaluate, ClassifyPredict

__all__ = ["ClassifyConfig", "ClassifyEvaluate", "ClassifyPredict"]
