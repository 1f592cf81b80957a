"""Speech recognition: ``lstmkit speech train|evaluate|predict|manifest``.

::

    manifest.csv (path,text) ──► WAV (mono, resampled) ──► MFCC / log-mel (+ deltas) ──► normalisation
        ──► [SpecAugment] ──► k-frame stacking ──► (Bi)LSTM ──► classify: pooled softmax, one label per clip
                                                            └─► ctc: per-step softmax, CTC loss, greedy / beam
        ──► model folder: config.json, model.safetensors, norm.json, labels.json

Modules: ``config`` (settings, torch-free), ``data`` (manifests, features, targets, batches),
``model`` (the network), ``decode`` (CTC decoding), ``metrics`` (accuracy, WER, CER), ``task`` (the
contract), ``predict`` (the predictor), ``manifest`` (the ``manifest`` command).
"""

from lstmkit.tasks.speech.config import (
    AudioSettings,
    AugmentSettings,
    ManifestOptions,
    SpeechConfig,
    SpeechEvaluate,
    SpeechPredict,
)

__all__ = ["AudioSettings", "AugmentSettings", "ManifestOptions", "SpeechConfig", "SpeechEvaluate", "SpeechPredict"]
