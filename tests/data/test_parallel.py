"""Parallel text: reading aligned files, bad input, BPE / whitespace codecs, truncation."""

import logging

import pytest

from lstmkit.data.parallel import TextCodec, encode_pairs, read_lines, read_parallel, train_codec, train_codecs
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


def test_read_parallel_skips_and_counts_empty_pairs(tmp_path, caplog):
    src = _write(tmp_path / "a.de", ["Hallo Welt", "", "Guten Tag", "Tschüss"])
    tgt = _write(tmp_path / "a.en", ["Hello world", "Hi", "   ", "Bye"])
    with caplog.at_level(logging.WARNING, logger="lstmkit"):
        data = read_parallel(src, tgt)
    assert data.sources == ["Hallo Welt", "Tschüss"] and data.targets == ["Hello world", "Bye"]
    assert data.skipped_empty == 2 and data.line_numbers == [1, 4] and len(data) == 2
    assert "skipped 2 empty" in caplog.text


def test_line_count_mismatch_names_both_counts(tmp_path):
    src = _write(tmp_path / "x.de", ["a", "b", "c"])
    tgt = _write(tmp_path / "x.en", ["a", "b"])
    with pytest.raises(DataError, match=r"x\.de has 3 lines but .*x\.en has 2"):
        read_parallel(src, tgt)


def test_missing_empty_and_binary_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="empty"):
        read_lines(_write(tmp_path / "e.txt", ["", "  "]))
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"ok line\n\xff\xfe broken\n")
    with pytest.raises(DataError, match=r"b\.txt: line 2: not valid UTF-8"):
        read_lines(bad)


def test_bpe_roundtrip_specials_and_json():
    codec = train_codec(EN, "bpe", vocab_size=120)
    assert [codec.token_to_id(t) for t in ("<pad>", "<unk>", "<s>", "</s>")] == [0, 1, 2, 3]
    assert len(codec) <= 120
    for s in EN[:5]:
        ids = codec.encode(s)
        assert min(ids) >= 4 and codec.decode(ids) == s  # lossless detokenisation
    again = TextCodec.from_json(codec.to_json())
    assert again.encode(EN[2]) == codec.encode(EN[2]) and len(again) == len(codec)
    assert codec.encode("Zebra ¤").count(codec.unk_id) >= 1  # unseen characters -> <unk>
    assert codec.decode([2, *codec.encode("Dogs run."), 3, 0]) == "Dogs run."  # specials dropped


def test_whitespace_mode_lowercase_and_shared(tmp_path):
    src = _write(tmp_path / "t.de", DE)
    tgt = _write(tmp_path / "t.en", EN)
    data = read_parallel(src, tgt)
    s, t = train_codecs(data, "whitespace", vocab_size=1000, shared=True, lowercase=True)
    assert s is t and "hunde" in s._vocab and "dogs" in s._vocab
    assert s.tokenize("Dogs RUN.") == ["dogs", "run."]
    assert t.decode(t.encode("Two dogs play")) == "two dogs play"
    s2, t2 = train_codecs(data, "bpe", vocab_size=100, shared=False)
    assert s2 is not t2 and s2.to_json()["mode"] == "bpe"
    again = TextCodec.from_json(t.to_json())
    assert again.encode("the man is eating.") == t.encode("the man is eating.")


def test_encode_pairs_truncates_with_warning(tmp_path, caplog):
    data = read_parallel(_write(tmp_path / "t.de", DE), _write(tmp_path / "t.en", EN))
    s, t = train_codecs(data, "whitespace", vocab_size=1000)
    with caplog.at_level(logging.WARNING, logger="lstmkit"):
        pairs = encode_pairs(data, s, t, max_length=3, name="t")
    assert all(len(p.src) <= 3 and len(p.tgt) <= 5 for p in pairs)
    assert pairs[0].tgt[0] == t.bos_id and pairs[0].tgt[-1] == t.eos_id and pairs[7].index == 7
    assert "truncated" in caplog.text and "--max-length 3" in caplog.text


def test_unknown_mode_and_corrupt_json():
    with pytest.raises(DataError, match="unknown mode"):
        train_codec(EN, "chars")
    with pytest.raises(ModelFolderError, match="unknown mode"):
        TextCodec.from_json({"mode": "chars"})
    with pytest.raises(ModelFolderError, match="unreadable"):
        TextCodec.from_json({"mode": "bpe", "lowercase": False, "model": {"nonsense": 1}})
