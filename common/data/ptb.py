"""Penn Treebank word-level corpus, batching and chunking (shared by the RNN and LSTM experiments)."""
import codecs
import os

import torch

from common import datadigest
from common.errors import KitError

BOM = "\ufeff"  # the byte-order mark, as a character
SPLITS = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
WHERE = ("the standard Mikolov PTB files ptb.train.txt, ptb.valid.txt and ptb.test.txt (10k vocabulary), "
         "e.g. from the 'data' folder of the simple-examples archive at "
         "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz; see docs/data.md, 'Penn Treebank'")


class Corpus:
    """Word ids for train, valid and test; the vocabulary grows in that order of first appearance,
    and every line ends with <eos>. Words are what str.split() separates, as the authors' tokenizer: CRLF or
    LF line ends give the same words. A UTF-8 byte-order mark at the start of a file is skipped (one line says
    so): it marks the encoding and is not text, and read as text it would add a word to the vocabulary and
    change every perplexity. A byte-order mark anywhere else is refused, naming the file and line.
    The token ids of each split and the vocabulary go into the run's data digest (common.datadigest)."""

    def __init__(self, folder, files=SPLITS):
        if folder is None or not os.path.isdir(folder):
            raise KitError(f"PTB data folder {folder!r} does not exist. Put {WHERE} in it, or pass --data <folder>.")
        missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise KitError(f"missing {', '.join(missing)} in {folder}. Expected {WHERE}.")
        self.word2idx, self.idx2word = {}, []
        self.files = dict(zip(("train", "valid", "test"), (os.path.join(folder, f) for f in files)))
        self.train, self.valid, self.test = (self.tokenize(path) for path in self.files.values())
        datadigest.note("PTB vocabulary (words in id order)", "\n".join(self.idx2word))

    def batches(self, bsz, device):
        """{"train", "valid", "test"}: each split batchified (a split too short for bsz is refused by name)."""
        return {split: batchify(getattr(self, split), bsz, device, self.files[split]) for split in self.files}

    def tokenize(self, path):
        ids, first_new = [], len(self.idx2word)
        try:
            with open(path, "rb") as f:
                bom = f.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
            if bom:
                print(f"note: {path} starts with a UTF-8 byte-order mark; it is skipped (an encoding mark, not a word)")
            with open(path, encoding="utf-8-sig" if bom else "utf8") as f:
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
        for word in self.idx2word[first_new:]:
            if BOM in word:  # past the start of a file: e.g. files joined with cat
                with open(path, encoding="utf-8-sig") as f:
                    line = next(n for n, text in enumerate(f, 1) if word in text.split())
                raise KitError(f"{path}, line {line}: the word {word!r} holds an invisible byte-order mark (U+FEFF), "
                               "which would make it a word of its own; remove it from the text")
        ids = torch.tensor(ids, dtype=torch.int64)
        datadigest.note(f"PTB {os.path.basename(path)} (token ids)", ids)
        return ids


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


def batchify(ids, bsz, device, name="a split"):
    """Cut the stream into bsz columns of equal length: shape (len // bsz, bsz); the rest is dropped.
    ┌ a g m s ┐
    │ b h n t │   columns are independent streams,
    │ c i o u │   rows are time steps
    └ ...     ┘
    """
    nbatch = ids.size(0) // bsz
    if nbatch < 2:
        raise KitError(f"{name} holds {ids.size(0)} tokens, too few for --batch_size {bsz}: each of the {bsz} "
                       "columns needs at least 2 tokens (an input and its target)")
    return ids[: nbatch * bsz].view(bsz, -1).t().contiguous().to(device)


def get_batch(source, i, bptt):
    """Rows i .. i+L-1 as input and rows i+1 .. i+L as flattened targets, L = min(bptt, len-1-i)."""
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)
