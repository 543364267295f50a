"""A CLIP BPE tokenizer whose merges spell whole words of the embedded prior's vocabulary.

CLIPTokenizer needs a real vocabulary and BPE merges (an empty one maps every word to one id). We build both:
every ASCII letter, digit and punctuation mark is a token (alone and word-final), and the merges join the
letters of each vocabulary word into one token; any other word falls back to letters.
"""

from __future__ import annotations

import string

from transformers import CLIPTokenizer

from dreamlift.embedded.vocabulary import WORDS

MAX_LENGTH = 16
"""Tokens per prompt (with start and end tokens); captions need at most 9."""
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _chain(pieces: list[str]) -> list[tuple[str, str]]:
    """Left-to-right merges that join ``pieces`` into one token."""
    merges, built = [], pieces[0]
    for piece in pieces[1:]:
        merges.append((built, piece))
        built += piece
    return merges


def _make(vocab: list[str], merges: list[tuple[str, str]]) -> CLIPTokenizer:
    return CLIPTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        merges=merges,
        model_max_length=MAX_LENGTH,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
    )


def build_tokenizer() -> CLIPTokenizer:
    """The embedded prior's tokenizer: letters as a fallback, each word of :data:`WORDS` as one token.

    Merges are the chain that spells each word from its letters (with CLIP's word-final ``</w>``). One word's
    chain can split another (``r e`` from "red" inside "green"), so words that still come out in pieces get
    a further chain joining the pieces they do come out in, until every word is a single token.
    """
    symbols = string.ascii_lowercase + string.digits + string.punctuation
    vocab: list[str] = [BOS, EOS] + list(symbols) + [s + "</w>" for s in symbols]
    merges: list[tuple[str, str]] = []

    def add_chain(pieces: list[str]) -> None:
        for left, right in _chain(pieces):
            if (left, right) not in merges:
                merges.append((left, right))
                if left + right not in vocab:
                    vocab.append(left + right)

    for word in WORDS:
        add_chain(list(word[:-1]) + [word[-1] + "</w>"])
    for _ in range(len(WORDS)):
        tokenizer = _make(vocab, merges)
        split = {w: tokenizer.tokenize(w) for w in WORDS}
        split = {w: pieces for w, pieces in split.items() if len(pieces) > 1}
        if not split:
            return tokenizer
        for pieces in split.values():
            add_chain(pieces)
    raise RuntimeError(f"could not make single tokens of {sorted(split)}")
