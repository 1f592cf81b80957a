"""lstmkit.nn: the LSTM family (a torch.nn.LSTM drop-in with variants, lengths, gates and streaming).

``LSTM`` (sequence layer), ``LSTMCell`` (one step), ``Gates`` (per-step gate activations),
``LSTMConfig`` (the constructor arguments as a dataclass).
"""

from .cell import Gates, LSTMCell
from .lstm import LSTM, LSTMConfig

__all__ = ["LSTM", "LSTMCell", "LSTMConfig", "Gates"]
