"""The words the embedded prior and motion adapter were trained on, and the words of a prompt outside them.

The embedded models know captions such as "a red cube, side view" and "a blue sphere moving right": six colours,
five shapes, four view words and six motions. A prompt with other words gets a drawing of the nearest caption
they happen to encode like (mostly a blob): :func:`vocabulary_warning` says so in one line before a run starts.
"""

from __future__ import annotations

import re
import sys

from dreamlift.embedded.motions import MOTIONS
from dreamlift.embedded.shapes import COLOURS, SHAPES
from dreamlift.priors.views import VIEWS

MOTION_WORDS = tuple(dict.fromkeys(word for motion in MOTIONS for word in motion.split()))
"""Words of the motion captions of the embedded motion adapter."""
WORDS = ("a", "an", "view", *COLOURS, *SHAPES, *VIEWS, *MOTION_WORDS)
"""Every word the embedded prior's tokenizer encodes as a single token."""


def unknown_words(prompt: str) -> list[str]:
    """The words of ``prompt`` (letters, case ignored; in order, each once) that are not in :data:`WORDS`."""
    words = re.findall(r"[a-z]+", prompt.lower())
    return list(dict.fromkeys(word for word in words if word not in WORDS))


def vocabulary_warning(prompt: str) -> str | None:
    """One line naming the words of ``prompt`` the embedded models never saw and what they know, or None."""
    unknown = unknown_words(prompt)
    if not unknown:
        return None
    named = ", ".join(f'"{word}"' for word in unknown)
    return (
        f"warning: the embedded prior does not know {named}: it knows 'a|an {{{'|'.join(COLOURS)}}} "
        f"{{{'|'.join(SHAPES)}}}' with a view word ({', '.join(VIEWS)}) or a motion ({', '.join(MOTIONS)}); "
        "pass --model for another prior"
    )


def warn_of_unknown_words(model: str, prompt: str) -> None:
    """With the embedded prior (``model`` ``embedded``), say on stderr which words of ``prompt`` it does not know;
    with any other model, nothing."""
    warning = vocabulary_warning(prompt) if model == "embedded" else None
    if warning is not None:
        print(warning, file=sys.stderr)
