"""The synthetic two-domain world: real text with a known, deterministic gold reward.

Two task families (summarisation: forum -> news/email; QA: everyday -> clinic/tech) are generated
from latent records, scored by `gold_reward`, labelled by simulated Bradley-Terry annotators and
tokenized by a word-level tokenizer trained on the world's own corpus. See `world` for the API and
/work/shared/synthetic-world.md for the design.
"""

from prefshift.data.synthetic.annotators import (
    BradleyTerryAnnotator,
    build_preference_pairs,
    candidate_pool,
    unpair,
)
from prefshift.data.synthetic.corrupt import CORRUPTIONS, corrupt
from prefshift.data.synthetic.gold import gold_breakdown, gold_reward
from prefshift.data.synthetic.world import (
    DEFAULT_ORACLE_QUALITY,
    SPLITS,
    TASKS,
    corpus,
    generate_split,
    oracle_write,
    train_tokenizer,
)

__all__ = [
    "CORRUPTIONS",
    "DEFAULT_ORACLE_QUALITY",
    "SPLITS",
    "TASKS",
    "BradleyTerryAnnotator",
    "build_preference_pairs",
    "candidate_pool",
    "corpus",
    "corrupt",
    "generate_split",
    "gold_breakdown",
    "gold_reward",
    "oracle_write",
    "train_tokenizer",
    "unpair",
]
