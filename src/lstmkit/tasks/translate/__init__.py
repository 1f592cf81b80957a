"""Machine translation: ``lstmkit translate train|evaluate|predict``.

::

    TSV source<TAB>target | two line-aligned files | [(source, target), ...]
        ──► codecs (BPE or whitespace words, per side or shared; fitted on the training pairs) ──► ids
        ──► length-bucketed batches ──► BiLSTM encoder (--hidden-size per direction) → attentional
            LSTM decoder (2 × --hidden-size) with input feeding ──► the trainer (best epoch by BLEU)
        ──► model folder: config.json, model.safetensors, source_tokenizer.json, target_tokenizer.json

Modules: ``config`` (settings, torch-free), ``data`` (input forms, batches), ``model`` (the network),
``decode`` (greedy and beam search), ``metrics`` (BLEU, chrF), ``task`` (the contract), ``predict``
(the predictor).
"""

from lstmkit.tasks.translate.config import TranslateConfig, TranslateEvaluate, TranslatePredict

__all__ = ["TranslateConfig", "TranslateEvaluate", "TranslatePredict"]
