"""Tests for lstmkit.data.vocab.Vocab (the shared token <-> id mapping)."""

import json

import pytest

from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError


def test_ids_specials_first_then_tokens():
    v = Vocab(["the", "cat"])
    assert v.tokens == ["<pad>", "<unk>", "the", "cat"]
    assert (v.pad_id, v.unk_id) == (0, 1)
    assert v.encode(["the", "dog", "cat"]) == [2, 1, 3]
    assert v.decode([3, 2]) == ["cat", "the"]
    assert len(v) == 4 and "cat" in v and "dog" not in v


def test_build_frequency_then_alphabetical_min_freq_max_size():
    data = [["b", "a", "c", "c"], ["a", "b", "d", "c"], ["e"]]
    v = Vocab.build(data)
    assert v.tokens[2:] == ["c", "a", "b", "d", "e"]  # c:3, a:2, b:2 (tie -> alphabetical), d:1, e:1
    assert Vocab.build(data, min_freq=2).tokens[2:] == ["c", "a", "b"]
    assert Vocab.build(data, max_size=2).tokens[2:] == ["c", "a"]


def test_build_is_deterministic_regardless_of_order():
    a = Vocab.build([["x", "y", "z"], ["z", "y"]])
    b = Vocab.build([["y", "z"], ["z", "y", "x"]])
    assert a == b


def test_json_round_trip_and_custom_specials():
    v = Vocab.build([["hello", "world", "hello"]], specials=("<pad>", "<unk>", "<s>", "</s>"))
    d = json.loads(json.dumps(v.to_json()))
    w = Vocab.from_json(d)
    assert w == v and w.tokens == v.tokens and w.index("<s>") == 2


def test_no_unk_raises_data_error():
    v = Vocab(["a"], specials=("<pad>",))
    assert v.unk_id is None
    with pytest.raises(DataError, match="'b'"):
        v.index("b")
    with pytest.raises(DataError, match="outside"):
        v.decode([7])


def test_special_in_tokens_not_duplicated():
    v = Vocab(["<unk>", "a"])
    assert v.tokens == ["<pad>", "<unk>", "a"]


def test_malformed_json_raises_model_folder_error():
    with pytest.raises(ModelFolderError):
        Vocab.from_json({"specials": ["<pad>"]})
    with pytest.raises(ModelFolderError):
        Vocab.from_json({"tokens": [1, 2]})
