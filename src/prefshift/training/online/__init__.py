"""Online RL objectives — GRPO, RLOO and PPO — on one loop that samples through the generation engine.

`advantages` and `losses` hold the maths as pure functions (each citing its paper), `rollout` samples and
scores responses per token, `loop.OnlineTrainer` runs the steps, `run.train_online` goes from a model
directory to a saved model with the same run layout as offline training.
"""

from prefshift.training.online.config import ONLINE_OBJECTIVES, OnlineConfig
from prefshift.training.online.loop import OnlineTrainer, RewardFn
from prefshift.training.online.run import train_online

__all__ = ["ONLINE_OBJECTIVES", "OnlineConfig", "OnlineTrainer", "RewardFn", "train_online"]
