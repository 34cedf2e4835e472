"""Prompt templates per task, and rendering a prompt conversation for a given tokenizer.

Why here and not in the adapters: the same source must give the same prompt text in every view (the
SFT stage and the preference stage of one strategy must see identical prompts, or the reference model
is conditioned on a prompt the policy never saw), and a base model and a chat model need different
renderings of the same conversation.

* Summarisation uses the TL;DR format of Stiennon et al. 2020 ("Learning to summarize from human
  feedback", arXiv:2009.01325), exactly as ``trl-lib/tldr`` writes it, so prompts built here from the
  raw comparisons match the ready-made SFT set byte for byte. CNN/DailyMail uses the same format with
  the article in place of the post (Stiennon et al.'s transfer setting).
* Dialogue without a chat template uses Anthropic HH's own transcript format
  (``"\\n\\nHuman: ...\\n\\nAssistant:"``), which base models fine-tuned on HH expect.
* With a chat template (``tokenizer.chat_template`` set), the conversation is rendered by it with the
  generation prompt. Templates like Llama 3's write ``bos_token`` into the text; the trainer's
  tokenisation and the generation engine both add a BOS themselves, so a leading BOS is removed from
  the rendered text whenever the tokenizer adds one (``data/tokenize.py`` keeps exactly one).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from prefshift.data.adapters.base import Message, Task
from prefshift.data.tokenize import _adds_bos

TLDR_TEMPLATE = "SUBREDDIT: r/{subreddit}\n\nTITLE: {title}\n\nPOST: {post}\n\nTL;DR:"
NEWS_TEMPLATE = "ARTICLE: {article}\n\nTL;DR:"

_SPEAKER = {"user": "Human", "assistant": "Assistant"}


def tldr_prompt(post: str, title: str, subreddit: str) -> str:
    return TLDR_TEMPLATE.format(subreddit=subreddit, title=title, post=post)


def news_prompt(article: str) -> str:
    return NEWS_TEMPLATE.format(article=article)


def hh_transcript(messages: list[Message]) -> str:
    """HH's plain-text format, ending with an open ``Assistant:`` turn for the model to complete."""
    turns = "".join(f"\n\n{_SPEAKER[m['role']]}: {m['content']}" for m in messages if m["role"] in _SPEAKER)
    return f"{turns}\n\nAssistant:"


def uses_chat_template(tokenizer: PreTrainedTokenizerBase | None) -> bool:
    return tokenizer is not None and tokenizer.chat_template is not None


def render_prompt(
    messages: list[Message], task: Task, tokenizer: PreTrainedTokenizerBase | None = None
) -> str:
    """The prompt text the model sees: chat template if the tokenizer has one, else the task's format."""
    if uses_chat_template(tokenizer):
        assert tokenizer is not None
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        bos = tokenizer.bos_token
        if bos and _adds_bos(tokenizer):
            while rendered.startswith(bos):
                rendered = rendered[len(bos) :]
        return rendered
    if task == "summarisation":
        if len(messages) != 1 or messages[0]["role"] != "user":
            raise ValueError("a summarisation prompt is one user turn holding the TL;DR template")
        return messages[0]["content"]
    return hh_transcript(messages)


def render_completion(response: str, tokenizer: PreTrainedTokenizerBase | None = None) -> str:
    """A completion string to append to the rendered prompt.

    Plain formats end in ``"TL;DR:"``/``"Assistant:"``, so the response gets one leading space (as in
    ``trl-lib/tldr`` and the study's own rows); a chat template's generation prompt already ends the
    line, so the response is appended as is. EOS is not added here: ``data/tokenize.py`` adds exactly one.
    """
    response = response.strip()
    return response if uses_chat_template(tokenizer) else " " + response
