"""Helpers the language-model tests share: a byte-level BPE tokenizer trained on a few lines."""
from __future__ import annotations


def bpe_tokenizer(lines: list[str], vocab: int):
    """A fast tokenizer (byte-level BPE with <unk>, <s>, </s>) trained on `lines` to `vocab` tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def write_parquet(path, rows: list[str]) -> None:
    """A one-column (`text`) parquet file, as the hub publishes WikiText's splits."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": pa.array(rows, pa.string())}), path)


def write_c4_shard(path, docs: list[str]) -> None:
    """A C4 shard as published: gzip'd JSON lines of text, timestamp and url."""
    import gzip
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for k, doc in enumerate(docs):
            handle.write(json.dumps({"text": doc, "timestamp": "2019-04-25T12:57:54Z",
                                     "url": f"https://example.com/{k}"}) + "\n")


def write_hub_texts(data, sentences: list[str]) -> None:
    """WikiText-2 raw (train, test) and the C4 shards the presets read (train 00000, validation
    00000), in the hub's file layout under `data`, made from `sentences`."""
    write_parquet(data / "wikitext-2-raw-v1" / "train-00000-of-00001.parquet", sentences * 2)
    write_parquet(data / "wikitext-2-raw-v1" / "test-00000-of-00001.parquet", sentences[:20])
    write_c4_shard(data / "en" / "c4-train.00000-of-01024.json.gz", [" ".join(sentences[k: k + 4]) for k in range(60)])
    write_c4_shard(data / "en" / "c4-validation.00000-of-00008.json.gz",
                   [sentences[k % len(sentences)] for k in range(1200)])
