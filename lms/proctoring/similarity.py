"""Copied-answer detection (EXM-9): pure functions — plain values in, plain values out; no
database, no Flask, no randomness that differs between runs.

Text answers (short answers and essays), per item
-------------------------------------------------

1. **Normalise** (``normalize``): NFKC (full-width letters, compatibility jamo and the like
   become their ordinary forms), case-folded, and only letters and digits kept — spaces,
   punctuation and line breaks are dropped. Every normalised character remembers the
   ``[start, end)`` of the original characters it came from, so passages found in the
   normalised text map back to offsets into the ORIGINAL answer.

2. **Shingle** (``shingle_hashes``): every run of ``k`` consecutive normalised characters,
   hashed to 64 bits (blake2b: the same on every machine and in every process, so a rerun
   finds the same candidates).

   Why character k-grams of the space-stripped text rather than word shingles: a Korean
   word (어절) carries its particles and endings (``학생이``/``학생은``/``학생을``), so word
   shingles change whenever one particle does; and Korean spacing (띄어쓰기) differs from
   writer to writer and is the first thing a copier changes. Character k-grams of the text
   without spaces are untouched by re-spacing, and one changed particle breaks at most
   ``k`` shingles. One Hangul syllable carries far more information than one Latin letter,
   so ``k`` depends on the script (``choose_profile``): 5 syllables (about two 어절, beyond
   chance agreement of two independent answers on the same topic except for technical
   terms) for Hangul/CJK text, 8 letters (about 1½–2 English words) for Latin text. One
   profile is used for all the answers to one item, so their shingles are comparable.

3. **Exclude** what every learner may legitimately share: shingles of the item's prompt
   (answers often restate the question) and of short-answer keys are dropped before
   anything is compared.

4. **Candidates without comparing every pair** (``candidate_pairs``):

   - MinHash signatures (``minhash``) of ``NUM_PERM`` values by one-permutation hashing
     with optimal densification (one hash per shingle instead of ``NUM_PERM``: pure Python
     stays fast), then LSH banding (``LSH_BANDS`` × ``LSH_ROWS``) — answers that agree on
     every value of one band meet in a bucket. With 42 bands of 3 rows a pair with
     Jaccard 0.5 becomes a candidate with probability 0.996, one with Jaccard 0.05 with
     0.005: whole-answer copies.
   - Anchors by winnowing (``winnow``, the MOSS scheme): the minimum hash of every window
     of ``min_run`` shingles (one minimal passage), with its position; a common run of
     text gives both answers the same anchors at the same position difference (one
     diagonal). Answers with ``Profile.anchors_needed`` anchors on one diagonal — as many
     as a long passage is sure to give — become candidates (``anchor_candidates``):
     partial copies (a copied paragraph or sentence inside otherwise different essays),
     which Jaccard alone never reaches. Requiring one diagonal keeps out pairs that merely
     share scattered common phrases. Anchors found in more than ``ANCHOR_MAX_SHARE`` of the
     answers (and more than ``ANCHOR_MIN_DF``) are common material, not evidence, and are
     not counted (this also bounds the work an anchor costs).

   Both are linear in the number of shingles plus the candidates found; identical
   normalised answers are collapsed to one before either runs.

5. **Verify** each candidate exactly: Jaccard and containment of the shingle sets, and
   the maximal common runs of shingles (``common_runs``) of at least a minimal passage,
   merged into passages. A pair is reported when its Jaccard reaches ``COPY_THRESHOLD``,
   or the passages cover ``CONTAINMENT_THRESHOLD`` of one of the two answers (a short
   answer copied into a longer one), or one passage reaches the profile's
   ``long_passage`` (a copied sentence in a paraphrased essay). Score: the larger of
   Jaccard and coverage, in [0, 1].

Answers shorter than the profile's ``min_chars`` (normalised) are skipped: identical short
answers are mostly correct answers, not copies (objective evidence covers them).

Objective items
---------------

``identical_wrong_answers``: per item, learners grouped by their (canonical) answer where
it differs from the key. A wrong answer shared by few learners is suspicious; a popular
distractor is not. Groups are ranked by rarity ``1 − chosen_by / answered``.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import unicodedata
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Hashable, Iterable, Sequence

# --- EXM-9 thresholds ------------------------------------------------------------------------

COPY_THRESHOLD = 0.5  # EXM-9: Jaccard of two answers' shingle sets from which they are reported
CONTAINMENT_THRESHOLD = 0.6  # EXM-9: share of one answer inside passages it shares with another
RARE_WRONG_SHARE = 0.1  # EXM-9: an identical wrong answer chosen by at most this share of the answerers…
MAX_WRONG_GROUP = 8  # EXM-9: …and by at most this many learners is reported (pairs of its learners)
MAX_PAIRS_PER_ITEM = 1000  # EXM-9: most suspicious pairs kept per item and kind (the rest counted)

# --- candidate search (not rules: they decide how fast, never what is reported) -------------

NUM_PERM = 126  # MinHash values per answer = LSH_BANDS × LSH_ROWS
LSH_BANDS = 42
LSH_ROWS = 3
ANCHOR_MAX_SHARE = 0.05  # anchors in more answers than this share (and than ANCHOR_MIN_DF) are ignored
ANCHOR_MIN_DF = 20
MAX_POSITIONS = 32  # positions of one shingle indexed per answer when finding runs (repetitive text)


@dataclass(frozen=True)
class Profile:
    """Lengths in normalised characters (letters and digits, spaces removed)."""

    name: str
    k: int  # shingle length
    min_chars: int  # EXM-9: shorter answers are not compared as text
    min_passage: int  # a shorter common run is shared vocabulary, not a passage
    long_passage: int  # EXM-9: one copied passage this long is reported whatever the shares

    @property
    def min_run(self) -> int:
        """A minimal passage in shingles (also the winnowing window: every minimal passage
        two answers share gives them a common anchor)."""
        return self.min_passage - self.k + 1

    @property
    def anchors_needed(self) -> int:
        """Anchors two answers must share to become a candidate pair: as many as a long
        passage is sure to give them (one per window of ``min_run`` shingles)."""
        return max(1, (self.long_passage - self.k + 1) // self.min_run)


# Hangul, CJK ideographs, kana: ~1 syllable ≈ 2–3 Latin letters of information.
DENSE = Profile("dense", k=5, min_chars=20, min_passage=10, long_passage=30)  # EXM-9
LATIN = Profile("latin", k=8, min_chars=40, min_passage=20, long_passage=60)  # EXM-9
DENSE_SHARE = 0.3  # answers of an item with this share of dense letters use the DENSE profile
PROFILES = {p.name: p for p in (DENSE, LATIN)}

_EXCLUDED = 0  # hash placeholder of an excluded shingle (a real hash of 0 becomes 1)
_EMPTY = 1 << 64
_MAXQ = (1 << 64) - 1
_POS_BITS = 32  # anchor positions packed beside the answer's index


# --- normalisation ---------------------------------------------------------------------------

def _attaches(ch: str) -> bool:
    """Belongs to the preceding character's cluster: combining marks, Hangul medial vowels
    and final consonants (decomposed, NFD-style Korean as some systems send it)."""
    return bool(unicodedata.combining(ch)) or "\u1160" <= ch <= "\u11ff" or "\ud7b0" <= ch <= "\ud7ff"


def normalize(text: str, *, offsets: bool = False):
    """NFKC, case-folded, letters and digits only.

    Returns the normalised string, or with ``offsets=True`` ``(norm, starts, ends)``: the
    normalised character ``i`` came from ``text[starts[i]:ends[i]]``. NFKC is applied per
    cluster (a character and the marks or jamo attaching to it), so the mapping is exact
    even for decomposed Hangul."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    if unicodedata.is_normalized("NFKC", text):
        units = ((i, i + 1, ch) for i, ch in enumerate(text))
    else:
        units = ((s, e, unicodedata.normalize("NFKC", text[s:e])) for s, e in _clusters(text))
    for s, e, piece in units:
        if len(piece) == 1 and piece < "\x80":
            if piece.isalnum():
                out.append(piece.lower())
                if offsets:
                    starts.append(s)
                    ends.append(e)
            continue
        for c in piece.casefold():
            if c.isalnum():
                out.append(c)
                if offsets:
                    starts.append(s)
                    ends.append(e)
    norm = "".join(out)
    return (norm, starts, ends) if offsets else norm


def _clusters(text: str):
    n = len(text)
    i = 0
    while i < n:
        j = i + 1
        while j < n and _attaches(text[j]):
            j += 1
        yield i, j
        i = j


def is_dense(ch: str) -> bool:
    o = ord(ch)
    return (0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F or 0x4E00 <= o <= 0x9FFF
            or 0x3400 <= o <= 0x4DBF or 0x3040 <= o <= 0x30FF or 0xF900 <= o <= 0xFAFF)


def choose_profile(texts: Iterable[str], sample_chars: int = 200_000) -> Profile:
    """DENSE when at least ``DENSE_SHARE`` of the letters of the answers (a sample of their
    first ``sample_chars`` characters in all) are Hangul/CJK, else LATIN."""
    dense = letters = 0
    for t in texts:
        for ch in t[:max(0, sample_chars - letters)]:
            if ch.isalpha():
                letters += 1
                dense += is_dense(ch)
        if letters >= sample_chars:
            break
    return DENSE if letters and dense / letters >= DENSE_SHARE else LATIN


# --- shingles, signatures, anchors ---------------------------------------------------------

def shingle_hashes(norm: str, k: int, exclude: frozenset[int] | set[int] = frozenset()) -> array:
    """64-bit hashes of the k-shingles of a normalised string, in order; an excluded
    shingle's hash is replaced by 0."""
    b2, fb = hashlib.blake2b, int.from_bytes
    hs = array("Q", ((fb(b2(norm[i:i + k].encode(), digest_size=8).digest(), "little") or 1)
                     for i in range(len(norm) - k + 1)))
    if exclude:
        for i, h in enumerate(hs):
            if h in exclude:
                hs[i] = _EXCLUDED
    return hs


def excluded_hashes(texts: Iterable[str], profile: Profile) -> frozenset[int]:
    """The shingles of texts every learner may share (the prompt, short-answer keys)."""
    out: set[int] = set()
    for t in texts:
        if t:
            out.update(shingle_hashes(normalize(t), profile.k))
    return frozenset(out)


def _probe_table() -> list[list[int]]:
    rng = random.Random(0x45584D39)  # "EXM9": fixed, so signatures are the same in every run
    return [[rng.randrange(NUM_PERM) for _ in range(64)] for _ in range(NUM_PERM)]


_PROBES = _probe_table()


def minhash(hashes: Iterable[int]) -> tuple[int, ...] | None:
    """MinHash signature of ``NUM_PERM`` values by one-permutation hashing (bin = hash mod
    NUM_PERM, value = the rest; the minimum per bin) with optimal densification (an empty
    bin takes the value of the first non-empty bin of its fixed pseudo-random probe
    sequence, the same for every answer — Shrivastava 2017), so that two signatures agree
    in a position with probability ≈ the Jaccard similarity. None when there are no
    shingles."""
    sig = [_EMPTY] * NUM_PERM
    for h in hashes:
        if h:
            v, b = divmod(h, NUM_PERM)
            if v < sig[b]:
                sig[b] = v
    empty = [i for i, v in enumerate(sig) if v == _EMPTY]
    if not empty:
        return tuple(sig)
    if len(empty) == NUM_PERM:
        return None
    filled = list(sig)
    for i in empty:
        for j in _PROBES[i]:
            if sig[j] != _EMPTY:
                filled[i] = sig[j]
                break
        else:
            j = next(j for j in range(i + 1, i + NUM_PERM) if sig[j % NUM_PERM] != _EMPTY)
            filled[i] = sig[j % NUM_PERM]
    return tuple(filled)


def signature_similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Share of equal positions: the MinHash estimate of Jaccard."""
    return sum(x == y for x, y in zip(a, b)) / len(a)


def winnow(hashes: Sequence[int], w: int) -> list[tuple[int, int]]:
    """Anchors ``(hash, position)``: the minimum hash of every window of ``w`` consecutive
    shingles (windows of excluded shingles only give none). Any common run of ≥ ``w``
    shingles gives both answers an anchor of the same hash at the same offset from the
    run's start."""
    vals = [h or _MAXQ for h in hashes]
    n = len(vals)
    picked: set[int] = set()
    for i in range(max(1, n - w + 1)):
        window = vals[i:i + w]
        m = min(window, default=_MAXQ)
        if m != _MAXQ:
            picked.add(i + window.index(m))
    return [(vals[p], p) for p in sorted(picked)]


def lsh_candidates(signatures: dict[int, Sequence[int]]) -> set[tuple[int, int]]:
    """Pairs (i < j) whose signatures agree on all ``LSH_ROWS`` values of some band."""
    pairs: set[tuple[int, int]] = set()
    for band in range(LSH_BANDS):
        lo = band * LSH_ROWS
        buckets: dict[tuple, list[int]] = defaultdict(list)
        for idx, sig in signatures.items():
            buckets[tuple(sig[lo:lo + LSH_ROWS])].append(idx)
        for members in buckets.values():
            if len(members) > 1:
                pairs.update(combinations(sorted(members), 2))
    return pairs


def anchor_candidates(anchors: Iterable[tuple[int, Iterable[tuple[int, int]]]], lengths: dict[int, int], *,
                      window: int, needed: int, max_df: int | None = None) -> set[tuple[int, int]]:
    """Pairs (i < j) sharing at least ``needed`` anchors on one diagonal (the same position
    difference: the anchors of one common run of text). ``anchors`` yields ``(answer,
    [(hash, position), ...])`` (it may be a generator: answers are indexed one by one);
    ``lengths`` gives every answer's length in shingles. Anchors found in more than
    ``max_df`` answers are common phrasing and are not counted. For two short answers
    fewer anchors suffice: as many as a common run over ``CONTAINMENT_THRESHOLD`` of the
    shorter one is sure to give (``window`` the winnowing window)."""
    if max_df is None:
        max_df = max(ANCHOR_MIN_DF, math.ceil(ANCHOR_MAX_SHARE * len(lengths)))
    mask = (1 << _POS_BITS) - 1
    # hash → one packed (answer << _POS_BITS | position), or a list of them (most anchors
    # occur in one answer only: no list for them).
    post: dict[int, int | list[int]] = {}
    for idx, items in anchors:
        base = idx << _POS_BITS
        for h, pos in items:
            v = post.get(h)
            if v is None:
                post[h] = base | pos
            elif v.__class__ is int:
                post[h] = [v, base | pos]
            else:
                v.append(base | pos)
    shared: dict[int, list[int]] = {}
    by_answer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for h, v in post.items():
        if v.__class__ is int:
            continue
        docs = {p >> _POS_BITS for p in v}
        if 2 <= len(docs) <= max_df:
            shared[h] = v
            for p in v:
                by_answer[p >> _POS_BITS].append((h, p & mask))
    del post
    out: set[tuple[int, int]] = set()
    for i in sorted(by_answer):
        diagonals: Counter = Counter()
        for h, pi in by_answer[i]:
            for p in shared[h]:
                j = p >> _POS_BITS
                if j > i:
                    diagonals[(j, pi - (p & mask))] += 1
        best: dict[int, int] = {}
        for (j, _), c in diagonals.items():
            if c > best.get(j, 0):
                best[j] = c
        for j, c in best.items():
            if c >= min(needed, max(1, int(CONTAINMENT_THRESHOLD * min(lengths[i], lengths[j])) // window)):
                out.add((i, j))
    return out


# --- passages --------------------------------------------------------------------------------

def common_runs(ha: Sequence[int], hb: Sequence[int], min_len: int = 1) -> list[tuple[int, int, int]]:
    """Maximal common runs of shingles: ``(start_a, start_b, length)`` in shingle positions,
    each at least ``min_len`` long. Excluded shingles (0) never match."""
    pos: dict[int, list[int]] = defaultdict(list)
    for j, h in enumerate(hb):
        if h:
            lst = pos[h]
            if len(lst) < MAX_POSITIONS:
                lst.append(j)
    runs: list[tuple[int, int, int]] = []
    active: dict[int, int] = {}  # end position in b → start position in a of a run ending at (i-1, end)
    get = pos.get
    for i, h in enumerate(ha):
        nxt: dict[int, int] = {}
        if h:
            for j in get(h, ()):
                nxt[j] = active.pop(j - 1, i)
        for j_end, i_start in active.items():
            length = i - i_start
            if length >= min_len:
                runs.append((i_start, j_end - length + 1, length))
        active = nxt
    n = len(ha)
    for j_end, i_start in active.items():
        length = n - i_start
        if length >= min_len:
            runs.append((i_start, j_end - length + 1, length))
    return runs


def merge_spans(spans: Iterable[Sequence[int]]) -> list[list[int]]:
    """Sorted, overlapping or touching ``[start, end)`` spans merged."""
    out: list[list[int]] = []
    for s, e in sorted((int(s), int(e)) for s, e in spans if e > s):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def _norm_spans(runs, k: int) -> tuple[list[list[int]], list[list[int]]]:
    return (merge_spans((sa, sa + n + k - 1) for sa, _, n in runs),
            merge_spans((sb, sb + n + k - 1) for _, sb, n in runs))


def to_original(spans: Iterable[Sequence[int]], starts: Sequence[int], ends: Sequence[int]) -> list[list[int]]:
    """Normalised-character spans → ``[start, end)`` offsets into the original text, merged."""
    return merge_spans((starts[s], ends[e - 1]) for s, e in spans if e > s)


@dataclass(frozen=True)
class Passages:
    a: list[list[int]]  # [start, end) offsets into the original first text
    b: list[list[int]]
    longest: int  # normalised characters of the longest common run
    coverage: float  # the larger share of either text inside the passages

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b}


def overlapping_passages(a: str, b: str, profile: Profile | None = None,
                         exclude: Iterable[str] = ()) -> Passages:
    """The passages two texts share: maximal common runs of shingles of at least a
    minimal passage (``profile.min_passage`` characters), mapped to character offsets of
    the ORIGINAL strings and merged."""
    profile = profile or choose_profile((a, b))
    excl = excluded_hashes(exclude, profile)
    na, sa, ea = normalize(a, offsets=True)
    nb, sb, eb = normalize(b, offsets=True)
    ha, hb = shingle_hashes(na, profile.k, excl), shingle_hashes(nb, profile.k, excl)
    runs = common_runs(ha, hb, profile.min_run)
    return _passages(runs, profile, (na, sa, ea), (nb, sb, eb))


def _passages(runs, profile: Profile, a_norm, b_norm) -> Passages:
    (na, sa, ea), (nb, sb, eb) = a_norm, b_norm
    pa, pb = _norm_spans(runs, profile.k)
    cov = max(_covered(pa) / len(na) if na else 0.0, _covered(pb) / len(nb) if nb else 0.0)
    longest = max((n + profile.k - 1 for _, _, n in runs), default=0)
    return Passages(to_original(pa, sa, ea), to_original(pb, sb, eb), longest, cov)


def _covered(spans) -> int:
    return sum(e - s for s, e in spans)


def marked_segments(text: str, spans: Iterable[Sequence[int]] | None) -> list[tuple[str, bool]]:
    """``text`` cut into ``(piece, inside_a_passage)`` for display (the caller escapes each
    piece; spans are clamped to the text)."""
    n = len(text)
    out: list[tuple[str, bool]] = []
    pos = 0
    for s, e in merge_spans((max(0, min(n, s)), max(0, min(n, e))) for s, e in (spans or ())):
        if s > pos:
            out.append((text[pos:s], False))
        out.append((text[s:e], True))
        pos = e
    if pos < n or not out:
        out.append((text[pos:], False))
    return out


# --- text answers of one item ------------------------------------------------------------

@dataclass(frozen=True)
class TextMatch:
    a: int  # index into the answers given (a < b)
    b: int
    score: float  # max(jaccard, coverage)
    jaccard: float
    containment: float  # common shingles / the smaller answer's shingles
    coverage: float  # the larger share of either answer inside the passages
    longest: int  # normalised characters of the longest passage
    passages: dict  # {"a": [[start, end], ...], "b": [...]} offsets into the original answers


@dataclass
class TextReport:
    profile: str
    answers: int
    compared: int  # answers long enough to compare
    skipped: list[int] = field(default_factory=list)  # indexes of answers too short (or empty)
    candidates: int = 0  # candidate pairs verified exactly
    matches: list[TextMatch] = field(default_factory=list)  # most suspicious first
    truncated: int = 0  # reported pairs beyond MAX_PAIRS_PER_ITEM, left out


@dataclass
class _Doc:
    members: list[int]  # indexes of the answers with this normalised text
    hashes: array
    unique: int
    norm_len: int


def find_copied_texts(answers: Sequence[str | None], *, exclude: Iterable[str] = (),
                      profile: Profile | None = None, max_pairs: int = MAX_PAIRS_PER_ITEM) -> TextReport:
    """EXM-9 over the text answers to one item: suspicious pairs, most suspicious first."""
    texts = [a if isinstance(a, str) else "" for a in answers]
    profile = profile or choose_profile(texts)
    k = profile.k
    excl = excluded_hashes(exclude, profile)
    report = TextReport(profile=profile.name, answers=len(texts), compared=0)

    docs: list[_Doc] = []
    by_content: dict[bytes, int] = {}
    for i, t in enumerate(texts):
        norm = normalize(t)
        if len(norm) < profile.min_chars:
            report.skipped.append(i)
            continue
        hs = shingle_hashes(norm, k, excl)
        unique = len(set(hs) - {_EXCLUDED})
        if not unique:
            report.skipped.append(i)
            continue
        report.compared += 1
        key = hashlib.blake2b(hs.tobytes(), digest_size=16).digest()
        d = by_content.get(key)
        if d is not None:  # identical after normalisation: one document, several answers
            docs[d].members.append(i)
            continue
        by_content[key] = len(docs)
        docs.append(_Doc([i], hs, unique, len(norm)))

    candidates = candidate_pairs({d: doc.hashes for d, doc in enumerate(docs)}, profile)
    report.candidates = len(candidates) + sum(len(d.members) > 1 for d in docs)

    found: list[tuple[TextMatch, list[list[int]], list[list[int]], int, int]] = []
    # Identical answers (after normalisation): every pair of the group.
    for d, doc in enumerate(docs):
        if len(doc.members) > 1:
            runs = common_runs(doc.hashes, doc.hashes, profile.min_run)
            _verified(found, d, d, 1.0, 1.0, runs, doc, doc, profile)
    # Candidates, verified exactly.
    current, cur_set = -1, set()
    for i, j in sorted(candidates):
        if i != current:
            current, cur_set = i, set(docs[i].hashes)
            cur_set.discard(_EXCLUDED)
        di, dj = docs[i], docs[j]
        inter = len(cur_set.intersection(dj.hashes))
        if inter < profile.min_run and inter / (di.unique + dj.unique - inter) < COPY_THRESHOLD:
            continue
        jac = inter / (di.unique + dj.unique - inter)
        cont = inter / min(di.unique, dj.unique)
        runs = common_runs(di.hashes, dj.hashes, profile.min_run)
        _verified(found, i, j, jac, cont, runs, di, dj, profile)

    matches: list[TextMatch] = []
    norm_cache: dict[int, tuple] = {}

    def offsets(idx: int):
        if idx not in norm_cache:
            norm_cache[idx] = normalize(texts[idx], offsets=True)
        return norm_cache[idx]

    found.sort(key=lambda f: (-f[0].score, -f[0].longest, f[0].a, f[0].b))
    for base, pa, pb, di, dj in found:
        for a in docs[di].members:
            for b in docs[dj].members:
                if di == dj and a >= b:
                    continue
                x, y, sx, sy = (a, b, pa, pb) if a < b else (b, a, pb, pa)
                if len(matches) >= max_pairs:
                    report.truncated += 1
                    continue
                _, ox, ex = offsets(x)
                _, oy, ey = offsets(y)
                matches.append(TextMatch(x, y, base.score, base.jaccard, base.containment, base.coverage,
                                         base.longest, {"a": to_original(sx, ox, ex), "b": to_original(sy, oy, ey)}))
        if len(norm_cache) > 4 * max_pairs:
            norm_cache.clear()
    matches.sort(key=lambda m: (-m.score, -m.longest, m.a, m.b))
    report.matches = matches
    return report


def _verified(found: list, i: int, j: int, jac: float, cont: float, runs, di: _Doc, dj: _Doc,
              profile: Profile) -> None:
    k = profile.k
    pa, pb = _norm_spans(runs, k)
    coverage = max(_covered(pa) / di.norm_len, _covered(pb) / dj.norm_len)
    longest = max((n + k - 1 for _, _, n in runs), default=0)
    if jac >= COPY_THRESHOLD or coverage >= CONTAINMENT_THRESHOLD or longest >= profile.long_passage:
        score = round(min(1.0, max(jac, coverage)), 4)
        found.append((TextMatch(i, j, score, round(jac, 4), round(cont, 4), round(min(1.0, coverage), 4),
                                longest, {}), pa, pb, i, j))


def candidate_pairs(hashes: dict[int, Sequence[int]], profile: Profile) -> set[tuple[int, int]]:
    """Candidate pairs (i < j) of documents: LSH over MinHash signatures (whole-answer
    copies) ∪ anchors shared along one diagonal (copied passages)."""
    w = max(1, profile.min_run)
    sigs = {idx: sig for idx, sig in ((idx, minhash(hs)) for idx, hs in hashes.items()) if sig is not None}
    pairs = lsh_candidates(sigs)
    del sigs
    lengths = {idx: len(hs) for idx, hs in hashes.items()}
    anchors = ((idx, winnow(hs, w)) for idx, hs in hashes.items())
    return pairs | anchor_candidates(anchors, lengths, window=w, needed=profile.anchors_needed)


# --- objective items -------------------------------------------------------------------------

OBJECTIVE_KINDS = ("single_choice", "multiple_choice", "short_answer")


def canonical_answer(kind: str, value) -> Hashable | None:
    """A comparable form of an answer, or None when unanswered. single_choice: the original
    choice index; multiple_choice: the sorted tuple of indexes; short_answer: the
    normalised text. Anything malformed compares by its JSON."""
    if value is None:
        return None
    if kind == "single_choice":
        if isinstance(value, bool):
            return ("json", json.dumps(value))
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind == "multiple_choice":
        if isinstance(value, (list, tuple)):
            if not value:
                return None
            if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                return tuple(sorted(set(value)))
    elif kind == "short_answer":
        if isinstance(value, str):
            return normalize(value) or None
    if value == "" or value == []:
        return None
    return ("json", json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def canonical_keys(kind: str, key) -> set:
    """The accepted canonical answers of a scoring key (short_answer: any of its texts)."""
    if kind == "short_answer":
        keys = key if isinstance(key, (list, tuple)) else [key]
        return {c for c in (canonical_answer(kind, k) for k in keys if isinstance(k, str)) if c is not None}
    c = canonical_answer(kind, key)
    return {c} if c is not None else set()


@dataclass(frozen=True)
class WrongGroup:
    value: Hashable  # the canonical wrong answer
    members: tuple  # the callers' references, in input order
    answered: int  # learners who answered the item
    score: float  # rarity: 1 − chosen_by / answered

    @property
    def chosen_by(self) -> int:
        return len(self.members)


def max_wrong_group(answered: int) -> int:
    return max(2, min(MAX_WRONG_GROUP, math.floor(RARE_WRONG_SHARE * answered)))


def identical_wrong_answers(kind: str, answers: Iterable[tuple[Hashable, object, object]]) -> list[WrongGroup]:
    """EXM-9 for one objective item. ``answers``: ``(ref, answer, key)`` per learner (the key
    of the version that learner was shown). Groups of ≥ 2 learners with the same wrong
    answer, no larger than ``max_wrong_group(answered)`` and not the answer of everyone
    (a wrong key, not copying), rarest first."""
    groups: dict[Hashable, list] = defaultdict(list)
    answered = 0
    for ref, value, key in answers:
        c = canonical_answer(kind, value)
        if c is None:
            continue
        answered += 1
        if c not in canonical_keys(kind, key):
            groups[c].append(ref)
    limit = max_wrong_group(answered)
    out = [WrongGroup(value, tuple(members), answered, round(1 - len(members) / answered, 4))
           for value, members in groups.items() if 2 <= len(members) <= limit and len(members) < answered]
    out.sort(key=lambda g: (-g.score, str(g.value)))
    return out


def wrong_answer_pairs(groups: Iterable[WrongGroup]) -> list[tuple[Hashable, Hashable, WrongGroup]]:
    """Every pair of learners of each group (in the groups' order)."""
    return [(a, b, g) for g in groups for a, b in combinations(g.members, 2)]


def display_value(value: Hashable):
    """A canonical answer as JSON-friendly data (tuples → lists, malformed → its JSON text)."""
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == "json":
            return value[1]
        return list(value)
    return value
