"""A word-level tokenizer trained on the world's own text.

The world writes every word and punctuation mark separated by single spaces, so splitting on
whitespace gives one token per word, and tokenizing a prompt and its completion separately gives the
same ids as tokenizing them joined by one space (no merge across the boundary); with no decoder,
decoding joins tokens with single spaces, which restores the world's text exactly. Only BOS is added to
single sequences: the training code appends EOS to responses itself, and a BOS inside a
prompt+completion sequence would break that equality.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int | None,
    out_dir: str | Path,
    model_max_length: int = 256,
) -> PreTrainedTokenizerFast:
    """Train a WordLevel tokenizer on `texts`, save it to `out_dir`, and return it.

    `vocab_size` caps the vocabulary (specials included; the rarest words become `<unk>`); None keeps
    every word seen. The saved directory loads offline with `AutoTokenizer.from_pretrained(out_dir)`.
    """
    core = Tokenizer(models.WordLevel(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size if vocab_size is not None else 1_000_000,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
    )
    core.train_from_iterator(texts, trainer=trainer)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, core.token_to_id(BOS))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer
