"""lstmkit: LSTM networks made practical.

One LSTM core (:mod:`lstmkit.nn`), one trainer (:mod:`lstmkit.train`) and six task families
(:mod:`lstmkit.tasks`). A trained model is a folder; :func:`lstmkit.load` turns it into a predictor.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
