r"""A reward-model judge over any ``AutoModelForSequenceClassification`` with one output.

Why: on real data the study's scalar judge is a reward model — a public one (for HH-RLHF/UltraFeedback
studies, as in "The Hitchhiker's Guide to Human Alignment with \*PO", arXiv:2407.15229) or one prefshift
trained on the source pairs. Scores feed ``evaluation.win_rate`` (scalar judge: no order to randomise)
and pseudo-labelling (``scorer``); ``pairwise``/``compare`` give the same judgement in the interfaces
of the pairwise LLM judge (``judging.llm``) so either judge can be dropped in.

Under the Bradley–Terry model a reward model is trained with, P(a ≻ b | x) = σ(r(x, a) − r(x, b)).

Text the model sees: the model's own chat template over ``[user: prompt, assistant: response]`` when its
tokenizer has one (how chat RMs were trained), otherwise ``prompt + response`` (one space between
them if neither side has one). Tokens: exactly one BOS when the tokenizer adds one
(``data.tokenize.encode``, so a template that writes BOS is not doubled), and optionally one EOS
(``append_eos``): prefshift's own Bradley–Terry RMs are trained with an EOS ending each completion and
read at it, hub RMs usually are not. The score is the model's own pooled logit (for decoder models:
its head at the last non-padding token), so any architecture works as it was trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

from prefshift.data.tokenize import encode
from prefshift.evaluation.winrate import Verdict

Prompt = str | list[dict[str, str]]
"""A prompt as text, or as a conversation of ``{role, content}`` messages ending with a user turn."""


class RewardModelJudge:
    """Batched reward scores of (prompt, response) pairs, and Bradley–Terry comparisons built on them.

    Example:
        >>> judge = RewardModelJudge("runs/rm/model", append_eos=True)
        >>> policy, reference = judge.score(prompts, outputs), judge.score(prompts, references)
        >>> evaluation.win_rate(policy, reference, rng_seed=0)
    """

    def __init__(
        self,
        model: str | Path | torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        batch_size: int = 16,
        max_length: int | None = None,
        append_eos: bool = False,
        tie_margin: float = 0.0,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if isinstance(model, str | Path):
            self.model = AutoModelForSequenceClassification.from_pretrained(str(model), dtype=dtype)
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(model))
        else:
            if tokenizer is None:
                raise ValueError("pass the tokenizer with an in-memory model")
            self.model, self.tokenizer = model, tokenizer
        if self.model.config.num_labels != 1:
            raise ValueError(
                f"a reward model has one output; {model!s:.80} has num_labels={self.model.config.num_labels}"
            )
        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if pad is None:
            raise ValueError("the tokenizer has neither a pad nor an EOS token to pad batches with")
        if append_eos and pad == tok.eos_token_id:
            # the model pools at the last token that is not the pad id, so an EOS equal to it would be skipped
            raise ValueError("append_eos needs a pad token distinct from EOS (set tokenizer.pad_token)")
        self.pad_token_id = pad
        self.model.config.pad_token_id = pad
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.append_eos = append_eos
        self.tie_margin = tie_margin

    def render(self, prompt: Prompt, response: str) -> str:
        """The text scored for one pair (see the module doc)."""
        tok = self.tokenizer
        if tok.chat_template is not None:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
            messages.append({"role": "assistant", "content": response.strip()})
            return tok.apply_chat_template(messages, tokenize=False)
        if not isinstance(prompt, str):
            raise ValueError("a conversational prompt needs a reward-model tokenizer with a chat template")
        joint = "" if prompt[-1:].isspace() or response[:1].isspace() else " "
        return prompt + joint + response

    def _ids(self, text: str) -> list[int]:
        ids = encode(self.tokenizer, text)
        if self.append_eos and self.tokenizer.eos_token_id is not None:
            ids = [*ids, self.tokenizer.eos_token_id]
        if self.max_length is not None and len(ids) > self.max_length:
            # keep the start (BOS, the instruction) and the end (the response, which is what is judged)
            head = self.max_length // 4
            ids = ids[:head] + ids[len(ids) - (self.max_length - head) :]
        return ids

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> np.ndarray:
        """Reward r(prompt_i, response_i) per item (float64 array), batched by length."""
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        ids = [self._ids(self.render(p, r)) for p, r in zip(prompts, responses, strict=True)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        out = np.zeros(len(ids), dtype=np.float64)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(ids[i]) for i in idx)
            input_ids = torch.full((len(idx), width), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits
            out[idx] = logits[:, 0].float().cpu().numpy()
        return out

    def pairwise(self, items: Sequence[tuple[Prompt, str, str]]) -> list[float]:
        """P(a better than b) = σ(r(x, a) − r(x, b)) per ``(prompt, a, b)``, like ``LLMJudge.pairwise``."""
        prompts = [p for p, _, _ in items]
        diff = self.score(prompts, [a for _, a, _ in items]) - self.score(prompts, [b for _, _, b in items])
        return (1.0 / (1.0 + np.exp(-diff))).tolist()

    def compare(self, prompt: Prompt, first: str, second: str) -> Verdict:
        """A ``winrate.JudgeFn``: ``'first'`` if r(first) − r(second) > ``tie_margin``, ``'second'`` if
        below −``tie_margin``, else ``'tie'``. One call scores two texts; for many items prefer
        ``score`` + ``evaluation.win_rate`` (batched, and an RM has no position bias to randomise)."""
        r = self.score([prompt, prompt], [first, second])
        diff = r[0] - r[1]
        return "first" if diff > self.tie_margin else "second" if diff < -self.tie_margin else "tie"

    def scorer(self, prompt_key: str = "prompt"):
        """The study's labeller ``score(examples, texts) -> list[float]`` (as ``study/run.py::_rm_scorer``).

        ``examples[i][prompt_key]`` is the prompt; pass the key of the raw prompt (e.g. the conversation)
        when the examples' ``prompt`` is already rendered for the policy's chat template.
        """

        def score(examples: Sequence[dict[str, Any]], texts: Sequence[str]) -> list[float]:
            return self.score([ex[prompt_key] for ex in examples], list(texts)).tolist()

        return score
