"""Penn Treebank word-level corpus, batching and chunking (shared by the RNN and LSTM experiments)."""
import os

import torch

from common.errors import KitError

SPLITS = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
WHERE = ("the standard Mikolov PTB files ptb.train.txt, ptb.valid.txt and ptb.test.txt (10k vocabulary), "
         "e.g. from the 'data' folder of the simple-examples archive at "
         "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz; see docs/data.md, 'Penn Treebank'")


class Corpus:
    """Word ids for train, valid and test; the vocabulary grows in that order of first appearance,
    and every line ends with <eos>."""

    def __init__(self, folder, files=SPLITS):
        if folder is None or not os.path.isdir(folder):
            raise KitError(f"PTB data folder {folder!r} does not exist. Put {WHERE} in it, or pass --data <folder>.")
        missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise KitError(f"missing {', '.join(missing)} in {folder}. Expected {WHERE}.")
        self.word2idx, self.idx2word = {}, []
        self.train, self.valid, self.test = (self.tokenize(os.path.join(folder, f)) for f in files)

    def tokenize(self, path):
        ids = []
        try:
            with open(path, encoding="utf8") as f:
                for line in f:
                    for word in line.split() + ["<eos>"]:
                        if word not in self.word2idx:
                            self.word2idx[word] = len(self.idx2word)
                            self.idx2word.append(word)
                        ids.append(self.word2idx[word])
        except UnicodeDecodeError:
            raise KitError(f"{path} is not UTF-8 text ({first_bad_byte(path)}); expected the plain-text PTB file "
                           "(see docs/data.md, 'Penn Treebank')") from None
        except OSError as e:
            raise KitError(f"cannot read {path}: {e}") from None
        if len(ids) < 2:
            raise KitError(f"{path} holds no text")
        return torch.tensor(ids, dtype=torch.int64)


def first_bad_byte(path):
    """Where a file stops being UTF-8, e.g. 'byte 0xff at offset 812, line 3'."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        raw.decode("utf8")
        return "it changed while being read"
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return f"byte 0x{raw[e.start]:02x} at offset {e.start}, line {line}"


def batchify(ids, bsz, device):
    """Cut the stream into bsz columns of equal length: shape (len // bsz, bsz); the rest is dropped.
    ┌ a g m s ┐
    │ b h n t │   columns are independent streams,
    │ c i o u │   rows are time steps
    └ ...     ┘
    """
    nbatch = ids.size(0) // bsz
    if nbatch < 2:
        raise KitError(f"a split of {ids.size(0)} tokens is too short for batch size {bsz}")
    return ids[: nbatch * bsz].view(bsz, -1).t().contiguous().to(device)


def get_batch(source, i, bptt):
    """Rows i .. i+L-1 as input and rows i+1 .. i+L as flattened targets, L = min(bptt, len-1-i)."""
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)
