"""Judges that compare responses: an LLM judge over any OpenAI-compatible endpoint (``llm``).

``LLMJudge.compare`` is a ``prefshift.evaluation.winrate.JudgeFn``; ``LLMJudge.pairwise`` gives
order-debiased P(a better) per item; ``make_labeller`` turns the judge into the study's
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

__all__ = [
    "PROMPT_VERSION",
    "JudgeError",
    "JudgeStats",
    "LLMJudge",
    "LLMJudgeConfig",
    "Verdict",
    "make_labeller",
    "parse_verdict",
    "render_messages",
]
