"""A token <-> id vocabulary that serialises to JSON (shared by the text, tag, translate and speech rooms).

Ids are assigned specials first, then tokens in the order given::

    v = Vocab(["the", "cat"])          # <pad>=0, <unk>=1, the=2, cat=3
    v.encode(["the", "dog"])           # [2, 1]   (unknown -> <unk>)
    v.decode([3, 2])                   # ["cat", "the"]

:meth:`Vocab.build` counts tokens and keeps the most frequent first, ties broken alphabetically, so the
same data always gives the same ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from lstmkit.errors import DataError, ModelFolderError

PAD = "<pad>"
UNK = "<unk>"
DEFAULT_SPECIALS: tuple[str, ...] = (PAD, UNK)


class Vocab:
    """Token <-> id mapping. ``len(v)`` is the number of ids (specials included)."""

    def __init__(self, tokens: Iterable[str], specials: Sequence[str] = DEFAULT_SPECIALS) -> None:
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}
        self.specials: tuple[str, ...] = tuple(specials)
        for tok in list(self.specials) + list(tokens):
            if not isinstance(tok, str):
                raise DataError(f"vocabulary: token {tok!r} is not a string")
            if tok not in self._stoi:  # a special that also occurs as a token keeps its special id
                self._stoi[tok] = len(self._itos)
                self._itos.append(tok)

    # ----------------------------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        token_lists: Iterable[Iterable[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
    ) -> Vocab:
        """Count tokens; keep those seen ``>= min_freq`` times, most frequent first (ties alphabetical),
        at most ``max_size`` of them (specials not counted)."""
        counts: Counter[str] = Counter()
        for toks in token_lists:
            counts.update(toks)
        for s in specials:
            counts.pop(s, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, int(max_size))]
        return cls(kept, specials=specials)

    # ----------------------------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._itos == other._itos and self.specials == other.specials

    def __repr__(self) -> str:
        return f"Vocab({len(self)} ids, specials={list(self.specials)})"

    @property
    def tokens(self) -> list[str]:
        """All tokens by id (specials first)."""
        return list(self._itos)

    @property
    def pad_id(self) -> int | None:
        return self._stoi.get(PAD) if PAD in self.specials else None

    @property
    def unk_id(self) -> int | None:
        return self._stoi.get(UNK) if UNK in self.specials else None

    def index(self, token: str) -> int:
        """Id of ``token``; unknown tokens map to ``<unk>`` if present, else raise :class:`DataError`."""
        i = self._stoi.get(token)
        if i is not None:
            return i
        unk = self.unk_id
        if unk is None:
            raise DataError(f"token {token!r} is not in the vocabulary (and it has no {UNK})")
        return unk

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.index(t) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._itos):
                raise DataError(f"id {i} is outside the vocabulary (size {len(self._itos)})")
            out.append(self._itos[i])
        return out

    # ----------------------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """``{"specials": [...], "tokens": [...]}`` where ``tokens`` excludes the specials."""
        n = len(self.specials)
        return {"specials": list(self.specials), "tokens": self._itos[n:]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Vocab:
        """Inverse of :meth:`to_json`; a malformed dict raises :class:`ModelFolderError`."""
        if not isinstance(d, dict) or not isinstance(d.get("tokens"), list):
            raise ModelFolderError("vocabulary JSON: expected an object with a 'tokens' list")
        specials = d.get("specials", list(DEFAULT_SPECIALS))
        if not isinstance(specials, list):
            raise ModelFolderError("vocabulary JSON: 'specials' must be a list")
        try:
            return cls(d["tokens"], specials=specials)
        except DataError as e:
            raise ModelFolderError(f"vocabulary JSON: {e}") from None
