"""Token batches for the language models: a synthetic one, or one cut from a text file as NAS-Bench-NLP does.

A batch holds ``images`` = token ids (N, T) and ``labels`` = the next token at every position (N, T), both int64.
From a text file the batch is the epsilon reference's: the words of every line plus ``<eos>`` (NAS-Bench-NLP's
``data.Corpus``), ids in order of first appearance, the stream cut into N equal columns (``batchify``) and the first
T steps of each column taken (``get_batch(train, 0)``, T = 70 = the benchmark's bptt).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nasx.data import Batch
from nasx.errors import NasxError

#: the benchmark's bptt: the length of one training sequence
SEQUENCE_LENGTH = 70
#: file names tried inside a folder (NAS-Bench-NLP's data/ptb layout, then the original corpora's)
TRAIN_FILES = ("train.txt", "ptb.train.txt", "wiki.train.tokens")


def synthetic_tokens(vocabulary: int, size: int, length: int = SEQUENCE_LENGTH, seed: int = 0) -> Batch:
    """``size`` sequences of token ids drawn uniformly from the vocabulary, from a fixed seed."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, vocabulary, (size, length + 1), generator=generator)
    return Batch(stream[:, :-1].contiguous(), stream[:, 1:].contiguous(),
                 f"tokens:synthetic:uniform:v{vocabulary}:n{size}x{length}:seed{seed}")


def text_tokens(path: str | os.PathLike, vocabulary: int, size: int, length: int = SEQUENCE_LENGTH) -> Batch:
    """The reference's batch from a text file (or a folder holding train.txt). Words beyond the first
    ``vocabulary`` distinct ones take the id of ``<unk>`` when the text has it, else the last id."""
    import torch

    file = _text_file(Path(path).expanduser())
    ids: dict[str, int] = {}
    stream: list[int] = []
    try:
        with open(file, encoding="utf-8") as handle:
            for line in handle:
                for word in line.split() + ["<eos>"]:
                    if word not in ids and len(ids) < vocabulary:
                        ids[word] = len(ids)
                    stream.append(ids.get(word, ids.get("<unk>", vocabulary - 1)))
    except (OSError, UnicodeDecodeError) as exc:
        raise NasxError(f"cannot read text from {str(file)!r}: {exc}") from None
    column = len(stream) // size
    if column < length + 1:
        raise NasxError(f"{file} has {len(stream)} tokens; {size} sequences of {length} tokens and their next "
                        f"tokens need at least {size * (length + 1)}")
    columns = torch.tensor(stream[:column * size], dtype=torch.long).view(size, column)  # batchify, transposed
    digest = hashlib.sha256(columns[:, :length + 1].numpy().tobytes()).hexdigest()[:16]
    return Batch(columns[:, :length].contiguous(), columns[:, 1:length + 1].contiguous(),
                 f"tokens:{digest}:v{vocabulary}:n{size}x{length}")


def _text_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for name in TRAIN_FILES:
            if (path / name).is_file():
                return path / name
        raise NasxError(f"{path} holds no training text ({', '.join(TRAIN_FILES)})")
    raise NasxError(f"text file or folder {str(path)!r} does not exist")
