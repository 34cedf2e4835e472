"""Judges that compare responses: an LLM judge over any OpenAI-compatible endpoint (``llm``) and a
reward-model judge over any ``AutoModelForSequenceClassification`` (``reward_model``).

``LLMJudge.compare`` is a ``prefshift.evaluation.winrate.JudgeFn``; ``LLMJudge.pairwise`` gives
order-debiased P(a better) per item; ``RewardModelJudge`` has the same ``compare``/``pairwise`` plus
batched ``score`` and ``scorer``; ``make_labeller`` turns the LLM judge into the study's
``(examples, texts) -> scores`` labeller for pseudo-labelling by teacher judging.
"""

from prefshift.judging.llm import (
    PROMPT_VERSION,
    JudgeError,
    JudgeStats,
    LLMJudge,
    LLMJudgeConfig,
    Verdict,
    make_labeller,
    parse_verdict,
    render_messages,
)
from prefshift.judging.reward_model import RewardModelJudge

__all__ = [
    "PROMPT_VERSION",
    "JudgeError",
    "JudgeStats",
    "LLMJudge",
    "LLMJudgeConfig",
    "RewardModelJudge",
    "Verdict",
    "make_labeller",
    "parse_verdict",
    "render_messages",
]
