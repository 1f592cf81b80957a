"""lstmkit.nn: the LSTM family (a torch.nn.LSTM drop-in with variants, lengths, gates and streaming).

``LSTM`` (sequence layer), ``LSTMCell`` (one step), ``Gates`` (per-step gate activations),
``LSTMConfig`` (the constructor arguments as a dataclass); ``SLSTM`` (xLSTM's sLSTM: exponential gating,
normaliser and stabiliser states, block-diagonal recurrence over heads), its ``SLSTMState`` and ``SGates``.
"""

from .cell import Gates, LSTMCell
from .lstm import LSTM, LSTMConfig
from .slstm import SLSTM, SGates, SLSTMState

__all__ = ["LSTM", "LSTMCell", "LSTMConfig", "Gates", "SLSTM", "SLSTMState", "SGates"]
