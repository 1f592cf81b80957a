"""Tests for lstmkit.data.text: readers (with error reporting), tokenizers, embeddings loader."""

import pytest
import torch

from lstmkit.data.files import read_lines
from lstmkit.data.labelled import parse_numbers, read_labelled, read_unlabelled
from lstmkit.data.text import (
    BpeTokenizer,
    WordTokenizer,
    load_embeddings,
    make_tokenizer,
    tokenizer_from_json,
    tokenizer_to_json,
)
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


def test_glue_tsv_with_header_and_trailing_space(tmp_path):
    p = write(tmp_path, "train.tsv", 'sentence\tlabel\nit \'s "good" \t1\nbad , bad \t0\n')
    rows = read_labelled(p)
    assert [(r.text, r.label, r.line) for r in rows] == [('it \'s "good"', "1", 2), ("bad , bad", "0", 3)]


def test_label_tab_text_lines_and_csv_columns(tmp_path):
    rows = read_labelled(write(tmp_path, "a.txt", "pos\tnice film\n\nneg\tdull, slow\n"))
    assert [(r.label, r.text, r.line) for r in rows] == [("pos", "nice film", 1), ("neg", "dull, slow", 3)]
    csv = write(tmp_path, "b.csv", 'id,review,stars\n1,"great, really",5\n2,meh,2\n')
    rows = read_labelled(csv, text_column="review", label_column="stars")
    assert [(r.text, r.label) for r in rows] == [("great, really", "5"), ("meh", "2")]


def test_missing_column_names_the_columns(tmp_path):
    p = write(tmp_path, "t.csv", "text,label\nhi,1\n")
    with pytest.raises(DataError, match=r"t.csv: column 'sentiment' not found \(columns: text, label\)"):
        read_labelled(p, label_column="sentiment")


def test_bad_files_raise_data_error_with_line(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_labelled(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="empty"):
        read_labelled(write(tmp_path, "e.tsv", "\n  \n"))
    with pytest.raises(DataError, match="line 3 is not valid UTF-8"):
        read_lines(write(tmp_path, "u.txt", b"ok\nfine\nbad \xff byte\n"))
    with pytest.raises(DataError, match="line 3 has 3 fields"):
        read_labelled(write(tmp_path, "r.tsv", "sentence\tlabel\na\t1\nb\t0\textra\n"))
    with pytest.raises(DataError, match="line 2: empty label"):
        read_labelled(write(tmp_path, "l.tsv", "sentence\tlabel\na\t\n"))
    with pytest.raises(DataError, match="line 1: expected 'label<TAB>text'"):
        read_labelled(write(tmp_path, "n.txt", "no tab here\n"))


def test_read_unlabelled_lines_or_column_keeps_every_row(tmp_path):
    # one text per input row, in order: an empty line is an empty text, never dropped
    assert read_unlabelled(write(tmp_path, "p.txt", "one text\n\ntwo\n")) == ["one text", "", "two"]
    assert read_unlabelled(write(tmp_path, "p.tsv", "sentence\tlabel\nx y\t1\n\nz\t0\n")) == ["x y", "", "z"]


def test_parse_numbers():
    assert parse_numbers("1, 2.5 -3;4e1", "row") == [1.0, 2.5, -3.0, 40.0]
    with pytest.raises(DataError, match="row: non-finite"):
        parse_numbers("1 nan", "row")
    with pytest.raises(DataError, match="'x' is not a number"):
        parse_numbers("1 x", "row")


def test_tokenizers():
    assert WordTokenizer(lowercase=True).tokenize("It's a don't-care, well-known film!") == [
        "it's",
        "a",
        "don't-care",
        ",",
        "well-known",
        "film",
        "!",
    ]
    assert make_tokenizer("whitespace").tokenize(" a  b\tc ") == ["a", "b", "c"]
    assert make_tokenizer("char").tokenize("ab ") == ["a", "b", " "]
    for kind in ("word", "whitespace", "char"):
        tok = make_tokenizer(kind, lowercase=True)
        again = tokenizer_from_json(tokenizer_to_json(tok))
        assert again.tokenize("Hello There") == tok.tokenize("Hello There")
    with pytest.raises(ModelFolderError):
        tokenizer_from_json({"kind": "sentencepiece"})


def test_bpe_train_vocab_ids_and_json_round_trip():
    texts = ["the lowest newest widest", "lower newer wider", "the new low"] * 20
    bpe = BpeTokenizer.train(texts, vocab_size=60)
    toks = bpe.tokenize("the newest lower")
    assert "".join(toks) == "thenewestlower"  # subwords cover the words
    v = bpe.vocab()
    assert v.pad_id == 0 and v.unk_id == 1
    assert v.encode(toks) == bpe.hf.encode("the newest lower").ids  # Vocab ids = BPE ids
    again = tokenizer_from_json(tokenizer_to_json(bpe))
    assert again.tokenize("widest newer") == bpe.tokenize("widest newer")


def test_load_embeddings_glove_and_word2vec(tmp_path):
    vocab = Vocab(["cat", "dog", "Emu"])
    glove = write(tmp_path, "g.txt", "cat 1 2 3\nfish 0 0 1\nemu 4 5 6\n")
    emb = load_embeddings(glove, vocab, seed=0)
    assert emb.weight.shape == (5, 3) and emb.found == 2
    assert torch.equal(emb.weight[vocab.index("cat")], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(emb.weight[vocab.index("Emu")], torch.tensor([4.0, 5.0, 6.0]))  # lowercase fallback
    assert torch.equal(emb.weight[vocab.pad_id], torch.zeros(3))
    assert torch.equal(emb.weight, load_embeddings(glove, vocab, seed=0).weight)  # seeded
    w2v = write(tmp_path, "w.txt", "2 2\ndog 0.5 -1\ncat 1 1\n")
    assert load_embeddings(w2v, vocab).weight[vocab.index("dog")].tolist() == [0.5, -1.0]
    with pytest.raises(DataError, match="line 2 has 2 values, earlier lines have 3"):
        load_embeddings(write(tmp_path, "bad.txt", "cat 1 2 3\ndog 1 2\n"), vocab)
    with pytest.raises(DataError, match="not found"):
        load_embeddings(tmp_path / "missing.txt", vocab)
