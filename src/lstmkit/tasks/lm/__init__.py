"""Language models (word or character level): ``lstmkit lm train|evaluate|predict|generate``.

::

    text ──► tokens (+ <eos> per line at word level) ──► vocabulary ids ──► batchify (B rows)
         ──► windows of T steps ──► embedding → stacked LSTM → softmax (full or adaptive), the hidden state
         carried from window to window (detached) and reset each epoch ──► the trainer
         ──► model folder: config.json, model.safetensors, vocab.json, sample.json

Modules: ``config`` (settings, torch-free), ``data`` (token streams, batchify, BPTT windows), ``model``
(the network), ``task`` (the contract, the carried state), ``predict`` (the predictor), ``generate``
(the streaming ``generate`` command), ``sampling`` (greedy, temperature, top-k, top-p).
"""

from lstmkit.tasks.lm.config import LMConfig, LMEvaluate, LMGenerate, LMPredict

__all__ = ["LMConfig", "LMEvaluate", "LMGenerate", "LMPredict"]
