"""The generic trainer every task uses (see docs/contracts.md, "lstmkit.train").

```python
from lstmkit.train import TrainConfig, Trainer, TrainResult, to_device
```
"""

from lstmkit.train.config import TrainConfig
from lstmkit.train.distributed import is_main_process, unwrap
from lstmkit.train.loop import EVENTS, Trainer, TrainResult, to_device

__all__ = ["TrainConfig", "Trainer", "TrainResult", "to_device", "EVENTS", "is_main_process", "unwrap"]
