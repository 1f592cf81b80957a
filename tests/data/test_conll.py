"""CoNLL / CoNLL-U / raw-text readers and the tagging schemes."""

import pytest
from conftest import data_dir

from lstmkit.data.conll import (
    Span,
    check_scheme,
    convert,
    detect_scheme,
    read_conll,
    read_conllu,
    read_for_tagging,
    read_sentences,
    read_text,
    spans_to_tags,
    tags_to_spans,
)
from lstmkit.errors import DataError


def _write(tmp_path, text, name="f.txt"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _sents(tag_lists):
    """Sentence-like objects for the scheme functions."""
    from lstmkit.data.conll import Sentence

    out, line = [], 1
    for tags in tag_lists:
        out.append(Sentence(tokens=["w"] * len(tags), tags=list(tags), lines=list(range(line, line + len(tags)))))
        line += len(tags) + 1
    return out


# ------------------------------------------------------------------------------------- readers
def test_conll_docstart_blank_lines_and_last_column(tmp_path):
    text = (
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"  # several blank lines
        "-DOCSTART- -X- -X- O\n"  # DOCSTART without a blank line before the next sentence
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n\n\n"  # trailing blank lines
    )
    s = read_conll(_write(tmp_path, text))
    assert [x.tokens for x in s] == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert [x.tags for x in s] == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert s[1].lines == [8, 9]
    assert s[0].columns[0] == ["EU", "NNP", "B-NP", "B-ORG"]
    assert read_conll(_write(tmp_path, text), tag_column=1)[0].tags == ["NNP", "VBZ"]


def test_conll_tabs_spaces_crlf_and_no_final_newline(tmp_path):
    tabs = read_conll(_write(tmp_path, "New York\tB-LOC\nis\tO\r\n\r\nok\tO"))
    assert tabs[0].tokens == ["New York", "is"] and tabs[0].tags == ["B-LOC", "O"]
    assert tabs[1].tokens == ["ok"]
    spaces = read_conll(_write(tmp_path, "a   B-X\nb  I-X  \n"))
    assert spaces[0].tags == ["B-X", "I-X"]


def test_conll_wrong_number_of_columns_names_file_and_line(tmp_path):
    p = _write(tmp_path, "a x B-X\nb y I-X\n\nc O\n")
    with pytest.raises(DataError, match=r"f\.txt:4: expected 3 columns.*found 2"):
        read_conll(p)


def test_conll_empty_missing_and_bad_column(tmp_path):
    with pytest.raises(DataError, match="empty file"):
        read_conll(_write(tmp_path, "\n\n  \n"))
    with pytest.raises(DataError, match="file not found"):
        read_conll(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="tag column 5 is out of range"):
        read_conll(_write(tmp_path, "a B-X\n"), tag_column=5)
    with pytest.raises(DataError, match="no sentences"):
        read_conll(_write(tmp_path, "-DOCSTART- O\n\n"))
    with pytest.raises(DataError, match="tags are missing"):
        read_conll(_write(tmp_path, "a\nb\n"))
    assert read_conll(_write(tmp_path, "a\nb\n"), require_tags=False)[0].tags is None


def test_conllu_skips_comments_ranges_and_empty_nodes(tmp_path):
    rows = [
        "# sent_id = 1",
        "# text = Don't go.",
        "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_",
        "1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_",
        "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_",
        "2.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t_\t_",
        "3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_",
        "",
        "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_",
    ]
    p = _write(tmp_path, "\n".join(rows) + "\n\n", "f.conllu")
    s = read_conllu(p)
    assert [x.tokens for x in s] == [["Do", "n't", "go"], ["Hi"]]
    assert s[0].tags == ["AUX", "PART", "VERB"]
    assert read_conllu(p, "xpos")[0].tags == ["VBP", "RB", "VB"]
    bad = _write(tmp_path, "1\tHi\thi\tINTJ\n", "bad.conllu")
    with pytest.raises(DataError, match=r"bad\.conllu:1: expected 10"):
        read_conllu(bad)


def test_raw_text_and_dispatch(tmp_path):
    p = _write(tmp_path, "Hello world .\n\n  John  lives here\n")
    s = read_text(p)
    assert [x.tokens for x in s] == [["Hello", "world", "."], ["John", "lives", "here"]]
    assert s[1].lines == [3, 3, 3] and s[0].tags is None
    assert read_sentences(p, "text", require_tags=False)[1].tokens[0] == "John"
    with pytest.raises(DataError, match="raw text has no tags"):
        read_sentences(p, "text")


def test_reading_for_tagging_drops_nothing(tmp_path):
    text = read_for_tagging(_write(tmp_path, "Hello world .\n\n  \nJohn lives\n"), "text")
    assert [x.tokens for x in text] == [["Hello", "world", "."], [], [], ["John", "lives"]]  # one per line
    conll = read_for_tagging(_write(tmp_path, "-DOCSTART- -X- O\n\nNew York\tNNP\nis\tVBZ\n\n\nok\tJJ\n"), "conll")
    assert [x.tokens for x in conll] == [[], ["New York", "is"], ["ok"]]
    assert conll[0].carried == [(0, "-DOCSTART- -X- O")] and conll[1].sep == "\t" and conll[1].tags is None
    assert conll[1].columns == [["New York", "NNP"], ["is", "VBZ"]]
    rows = [
        "# sent_id = 1",
        "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_",
        "1\tDo\t_\t_\t_\t_\t_\t_\t_\t_",  # no tag ('_'): fine for tagging
        "2\tn't\t_\t_\t_\t_\t_\t_\t_\t_",
        "2.1\tgo\t_\t_\t_\t_\t_\t_\t_\t_",
        "# after",
        "",
        "# sent_id = 2",
        "",
    ]
    u = read_for_tagging(_write(tmp_path, "\n".join(rows) + "\n", "f.conllu"), "conllu")
    assert [x.tokens for x in u] == [["Do", "n't"], []]
    assert u[0].carried == [(0, rows[0]), (0, rows[1]), (2, rows[4]), (2, rows[5])]
    assert u[1].carried == [(0, "# sent_id = 2")] and u[0].sep == "\t"
    with pytest.raises(DataError, match="unknown format"):
        read_for_tagging(_write(tmp_path, "a\n"), "csv")


# ------------------------------------------------------------------------------------- schemes
def test_detect_schemes():
    assert detect_scheme(_sents([["B-PER", "I-PER", "O", "B-LOC"]])) == "IOB2"
    assert detect_scheme(_sents([["I-PER", "I-PER", "B-PER", "O", "I-LOC"]])) == "IOB1"
    assert detect_scheme(_sents([["B-PER", "E-PER", "O", "S-LOC"]])) == "IOBES"
    assert detect_scheme(_sents([["NN", "VB", "DT"]])) == "none"
    assert detect_scheme(_sents([["O", "O"]])) == "IOB2"


def test_mixed_schemes_raise_with_lines():
    with pytest.raises(DataError, match=r"mixed tag schemes: line 1 tag 'B-PER'.*line 4 tag 'I-LOC'"):
        detect_scheme(_sents([["B-PER", "O"], ["I-LOC"]]), "t.txt")
    with pytest.raises(DataError, match="mixed tag schemes"):
        detect_scheme(_sents([["S-PER", "O"], ["B-LOC", "O"]]))  # IOBES and IOB2
    with pytest.raises(DataError, match="mixed tag schemes.*'NN' is not"):
        detect_scheme(_sents([["B-PER", "NN"]]))


def test_check_scheme():
    check_scheme(_sents([["B-PER", "I-PER"]]), "IOB2")
    with pytest.raises(DataError, match="not IOB1"):
        check_scheme(_sents([["O", "B-PER"]]), "IOB1")
    with pytest.raises(DataError, match="not IOBES"):
        check_scheme(_sents([["B-PER", "O"]]), "IOBES")


def test_conversion_round_trips():
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "I-ORG"]
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "I-ORG"]
    iobes = ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "I-ORG", "E-ORG"]
    spans = [Span("PER", 0, 1), Span("PER", 2, 2), Span("LOC", 4, 4), Span("ORG", 5, 7)]
    for tags, scheme in ((iob2, "IOB2"), (iob1, "IOB1"), (iobes, "IOBES")):
        assert tags_to_spans(tags) == spans
        assert spans_to_tags(spans, 8, scheme) == tags
        for other in (iob2, iob1, iobes):
            assert convert(other, scheme) == tags
    assert convert(["NN", "VB"], "none") == ["NN", "VB"]
    # lenient reading of invalid sequences (as conlleval): I- after O starts a chunk
    assert tags_to_spans(["O", "I-PER", "E-LOC"]) == [Span("PER", 1, 1), Span("LOC", 2, 2)]


@pytest.mark.real_data("conll2003")
@pytest.mark.real_data("ud_english_ewt")
def test_real_conll2003_and_ewt_slices():
    conll = data_dir("conll2003") / "valid.txt"
    ewt = data_dir("ud_english_ewt") / "en_ewt-ud-dev.conllu"
    s = read_conll(conll)
    assert len(s) == 3250 and sum(len(x.tokens) for x in s) == 51362
    assert detect_scheme(s) == "IOB2"
    u = read_conllu(ewt)
    assert len(u) == 2001 and sum(len(x.tokens) for x in u) == 25147
    assert detect_scheme(u) == "none"
