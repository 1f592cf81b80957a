"""Parallel text: reading aligned files and TSV, bad input, BPE / whitespace codecs, truncation."""

import pytest

from lstmkit.data.files import read_lines
from lstmkit.data.parallel import (
    TextCodec,
    encode_pairs,
    from_pairs,
    read_parallel,
    read_tsv,
    train_codec,
    train_codecs,
)
from lstmkit.data.text import BpeTokenizer, tokenizer_from_json
from lstmkit.errors import DataError, ModelFolderError

EN = [
    "A man is riding a bike.",
    "Two dogs play in the snow.",
    "A girl's red hat, on a table!",
    "The man is eating.",
    "Dogs run.",
] * 4
DE = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Der rote Hut eines Mädchens, auf dem Tisch!",
    "Der Mann isst.",
    "Hunde rennen.",
] * 4


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_parallel_skips_and_counts_empty_pairs(tmp_path, capsys):
    src = _write(tmp_path / "a.de", ["Hallo Welt", "", "Guten Tag", "Tschüss"])
    tgt = _write(tmp_path / "a.en", ["Hello world", "Hi", "   ", "Bye"])
    data = read_parallel(src, tgt)
    assert data.sources == ["Hallo Welt", "Tschüss"] and data.targets == ["Hello world", "Bye"]
    assert data.skipped_empty == 2 and data.line_numbers == [1, 4] and len(data) == 2
    err = capsys.readouterr().err
    assert "skipped 2 empty" in err and err.startswith("warning: ") and err.count("\n") == 1


def test_read_tsv_and_pairs(tmp_path, capsys):
    tsv = _write(tmp_path / "a.tsv", ["Hallo Welt\tHello world", "", "Guten Tag\t ", "Tschüss\tBye"])
    data = read_tsv(tsv)
    assert data.sources == ["Hallo Welt", "Tschüss"] and data.targets == ["Hello world", "Bye"]
    assert data.skipped_empty == 2 and data.line_numbers == [1, 4] and "skipped 2 empty" in capsys.readouterr().err
    assert data.subset([1]).sources == ["Tschüss"] and data.subset([1]).line_numbers == [4]
    with pytest.raises(DataError, match=r"a\.tsv: line 1: expected source<TAB>target, found 3"):
        read_tsv(_write(tmp_path / "a.tsv", ["a\tb\tc"]))
    with pytest.raises(DataError, match="no pair has text on both sides"):
        from_pairs([("x", " ")], "mine")
    assert from_pairs([(" x ", "y")]).sources == ["x"]


def test_line_count_mismatch_names_both_counts(tmp_path):
    src = _write(tmp_path / "x.de", ["a", "b", "c"])
    tgt = _write(tmp_path / "x.en", ["a", "b"])
    with pytest.raises(DataError, match=r"x\.de has 3 lines but .*x\.en has 2"):
        read_parallel(src, tgt)


def test_missing_empty_and_binary_files(tmp_path):
    """Lines come from lstmkit.data.files.read_lines, the project's one line reader."""
    with pytest.raises(DataError, match="not found"):
        read_parallel(tmp_path / "nope.txt", tmp_path / "nope.txt")
    with pytest.raises(DataError, match="empty"):
        read_lines(_write(tmp_path / "e.txt", ["", "  "]))
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"ok line\n\xff\xfe broken\n")
    with pytest.raises(DataError, match=r"b\.txt: line 2 is not valid UTF-8"):
        read_parallel(bad, bad)
    # a Unicode line separator inside a sentence does not break the alignment of two files
    src = _write(tmp_path / "u.de", ["eins\u2028zwei", "drei"])
    tgt = _write(tmp_path / "u.en", ["one two", "three"])
    assert len(read_parallel(src, tgt)) == 2


def test_bpe_roundtrip_specials_and_json():
    codec = train_codec(EN, "bpe", vocab_size=120)
    assert [codec.token_to_id(t) for t in ("<pad>", "<unk>", "<s>", "</s>")] == [0, 1, 2, 3]
    assert len(codec) <= 120 and isinstance(codec.tokenizer, BpeTokenizer)
    for s in EN[:5]:
        ids = codec.encode(s)
        assert min(ids) >= 4 and codec.decode(ids) == s  # lossless detokenisation
    again = TextCodec.from_json(codec.to_json())
    assert again.encode(EN[2]) == codec.encode(EN[2]) and len(again) == len(codec)
    assert codec.encode("Zebra ¤").count(codec.unk_id) >= 1  # unseen characters -> <unk>
    assert codec.decode([2, *codec.encode("Dogs run."), 3, 0]) == "Dogs run."  # specials dropped
    # the shared JSON layout: the shared reader gives back the same BPE tokenizer
    shared = tokenizer_from_json(codec.to_json())
    assert isinstance(shared, BpeTokenizer) and shared.tokenize(EN[1]) == codec.tokenize(EN[1])


def test_classify_bpe_unchanged():
    """BpeTokenizer.train without the translation options keeps classify's tokenizer: whitespace
    pre-tokenisation, two specials, no decoder."""
    bpe = BpeTokenizer.train(EN, vocab_size=60)
    assert [bpe.token_to_id(t) for t in ("<pad>", "<unk>", "<s>")] == [0, 1, None]
    assert bpe.tokenize("Dogs run.")[-1] == "." and "▁" not in "".join(bpe.tokenize("Dogs run."))
    assert bpe.vocab().index("<unk>") == 1 and len(bpe.vocab()) == bpe.size()


def test_whitespace_mode_lowercase_and_shared(tmp_path):
    src = _write(tmp_path / "t.de", DE)
    tgt = _write(tmp_path / "t.en", EN)
    data = read_parallel(src, tgt)
    s, t = train_codecs(data, "whitespace", vocab_size=1000, shared=True, lowercase=True)
    assert s is t and s.token_to_id("hunde") is not None and s.token_to_id("dogs") is not None
    assert s.tokenize("Dogs RUN.") == ["dogs", "run."]
    assert t.decode(t.encode("Two dogs play")) == "two dogs play"
    s2, t2 = train_codecs(data, "bpe", vocab_size=100, shared=False)
    assert s2 is not t2 and s2.to_json()["kind"] == "bpe"
    again = TextCodec.from_json(t.to_json())
    assert again.encode("the man is eating.") == t.encode("the man is eating.") and again.lowercase


def test_encode_pairs_truncates_with_warning(tmp_path, capsys):
    data = read_parallel(_write(tmp_path / "t.de", DE), _write(tmp_path / "t.en", EN))
    s, t = train_codecs(data, "whitespace", vocab_size=1000)
    capsys.readouterr()
    pairs = encode_pairs(data, s, t, max_length=3, name="t")
    assert all(len(p.src) <= 3 and len(p.tgt) <= 5 for p in pairs)
    assert pairs[0].tgt[0] == t.bos_id and pairs[0].tgt[-1] == t.eos_id and pairs[7].position == 7
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and "--max-length 3" in err


def test_unknown_mode_and_corrupt_json():
    with pytest.raises(DataError, match="unknown mode"):
        train_codec(EN, "chars")
    with pytest.raises(ModelFolderError, match="unknown tokenizer kind 'chars'"):
        TextCodec.from_json({"kind": "chars"})
    with pytest.raises(ModelFolderError, match="unknown tokenizer kind 'word'"):
        TextCodec.from_json({"kind": "word", "lowercase": False})
    with pytest.raises(ModelFolderError, match="cannot read the BPE tokenizer") as info:
        TextCodec.from_json({"kind": "bpe", "lowercase": False, "bpe": {"nonsense": 1}})
    assert not str(info.value).startswith("tokenizer.json")  # the caller names its own file
    with pytest.raises(ModelFolderError, match="unreadable"):
        TextCodec.from_json({"kind": "whitespace", "lowercase": False})
