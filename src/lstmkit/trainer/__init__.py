"""The generic trainer every task uses (see docs/architecture.md).

```python
from lstmkit.trainer import TrainConfig, Trainer, TrainResult, to_device
```

Names are imported on first use, so that reading :class:`TrainConfig` (the command line's
``--help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstmkit.trainer.config import TrainConfig
    from lstmkit.trainer.distributed import is_main_process, unwrap
    from lstmkit.trainer.loop import EVENTS, Trainer
    from lstmkit.trainer.state import TrainResult, to_device

_WHERE = {
    "TrainConfig": "lstmkit.trainer.config",
    "Trainer": "lstmkit.trainer.loop",
    "TrainResult": "lstmkit.trainer.state",
    "to_device": "lstmkit.trainer.state",
    "EVENTS": "lstmkit.trainer.loop",
    "is_main_process": "lstmkit.trainer.distributed",
    "unwrap": "lstmkit.trainer.distributed",
}

__all__ = ["EVENTS", "TrainConfig", "TrainResult", "Trainer", "is_main_process", "to_device", "unwrap"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'lstmkit.trainer' has no attribute {name!r}")
