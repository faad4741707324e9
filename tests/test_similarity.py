"""EXM-9 copied-answer detection: the pure functions of ``lms.proctoring.similarity``
(normalisation, shingles, MinHash/LSH, anchors, passages, identical wrong answers)."""
from __future__ import annotations

import random
import unicodedata
from itertools import combinations

import pytest

from lms.proctoring import similarity as sim

KO_A = ("사회복지실천에서 사례관리는 복합적인 욕구를 가진 클라이언트에게 필요한 서비스를 연결하고 조정하는 "
        "과정이다. 사례관리자는 먼저 클라이언트의 욕구와 강점을 사정하고, 이를 바탕으로 목표를 세운다. "
        "다음으로 지역사회의 공식적, 비공식적 자원을 찾아 연계하며 서비스 제공 과정을 점검한다. 마지막으로 "
        "목표 달성 정도를 평가하고 종결 여부를 결정한다.")
KO_UNRELATED = ("복지국가의 발달은 산업화와 민주화의 결과로 설명되기도 한다. 권력자원론은 노동계급의 조직화가 "
                "복지 확대를 이끌었다고 본다. 반면 신제도주의는 기존 제도가 이후의 정책 선택을 제약한다고 "
                "강조한다. 우리나라는 외환위기 이후 국민기초생활보장제도를 도입하면서 공공부조를 크게 "
                "바꾸었다.")
KO_SENTENCE = "사례관리자는 먼저 클라이언트의 욕구와 강점을 사정하고, 이를 바탕으로 목표를 세운다."
KO_PARAPHRASE = ("사례관리란 여러 문제를 한꺼번에 겪는 사람을 돕기 위한 방법이라고 생각한다. " + KO_SENTENCE +
                 " 그 뒤에는 가족이나 이웃, 기관과 같은 도움을 이어 주는 일이 중요하다. 끝으로 얼마나 나아졌는지 "
                 "살펴보아야 한다.")

EN_A = ("Case management in social welfare practice links clients who have complex needs with the services "
        "they require. The case manager first assesses the needs and strengths of the client and then sets "
        "goals together with the client. Next, formal and informal community resources are identified and "
        "connected, and the delivery of services is monitored. Finally, the achievement of the goals is "
        "evaluated and the case is closed when appropriate.")
EN_SENTENCE = ("The case manager first assesses the needs and strengths of the client and then sets goals "
               "together with the client.")
EN_PARAPHRASE = ("In my view case management is a way of helping people who face many problems at once. "
                 + EN_SENTENCE + " After that it matters to bring in family, neighbours and agencies. At the "
                 "end one has to look at how far things have improved.")
EN_UNRELATED = ("The welfare state grew out of industrialisation and democratisation. Power resources theory "
                "argues that organised labour drove the expansion of social programmes, while historical "
                "institutionalism stresses how existing institutions constrain later policy choices.")


def _norm(s: str) -> str:
    return sim.normalize(s)


# --- normalisation and offsets -------------------------------------------------------------

def test_exm9_normalize_strips_spacing_punctuation_and_case():
    assert sim.normalize("사회 복지,  실천!") == "사회복지실천"
    assert sim.normalize("Case-Management  IN Practice.") == "casemanagementinpractice"
    assert sim.normalize("ＡＢＣ１２３") == "abc123"  # NFKC: full-width forms


def test_exm9_normalize_offsets_point_into_the_original():
    text = "  사회 복지,\n실천 ＡＢ!"
    norm, starts, ends = sim.normalize(text, offsets=True)
    assert norm == "사회복지실천ab"
    assert [text[s:e] for s, e in zip(starts, ends)] == list("사회복지실천") + ["Ａ", "Ｂ"]


def test_exm9_decomposed_hangul_maps_to_whole_syllables():
    nfd = unicodedata.normalize("NFD", "사례 관리")
    norm, starts, ends = sim.normalize(nfd, offsets=True)
    assert norm == "사례관리"
    assert [unicodedata.normalize("NFC", nfd[s:e]) for s, e in zip(starts, ends)] == list("사례관리")


def test_exm9_choose_profile_by_script():
    assert sim.choose_profile([KO_A, KO_UNRELATED]) is sim.DENSE
    assert sim.choose_profile([EN_A, EN_UNRELATED]) is sim.LATIN
    # Korean with English terms is still Korean.
    assert sim.choose_profile(["사례관리(case management)는 클라이언트 중심의 통합적 서비스 전달 방법이다."]) is sim.DENSE


# --- pairs of texts --------------------------------------------------------------------------

def _only_match(texts, **kw):
    report = sim.find_copied_texts(texts, **kw)
    return report, {(m.a, m.b): m for m in report.matches}


def test_exm9_identical_answers_score_one_with_the_whole_text_marked():
    report, found = _only_match([KO_A, KO_A, KO_UNRELATED])
    assert set(found) == {(0, 1)}
    m = found[(0, 1)]
    assert m.score == 1.0 and m.jaccard == 1.0
    (s, e), = m.passages["a"]
    assert _norm(KO_A[s:e]) == _norm(KO_A)


def test_exm9_near_identical_korean_respaced_and_particles_changed():
    """A copy with different spacing (띄어쓰기), punctuation and a few particles changed."""
    copy = (KO_A.replace("사례관리는", "사례 관리란").replace("사회복지실천에서", "사회복지 실천에서,")
            .replace("클라이언트에게", "클라이언트한테").replace(". ", ".\n").replace("서비스를", "서비스 를"))
    report, found = _only_match([KO_UNRELATED, KO_A, copy])
    assert set(found) == {(1, 2)}
    m = found[(1, 2)]
    assert m.jaccard >= sim.COPY_THRESHOLD and m.score >= 0.7
    assert report.profile == "dense"


def test_exm9_near_identical_english_with_word_changes():
    copy = EN_A.replace("first", "initially").replace("Finally", "Lastly").replace("  ", " ").upper()
    _, found = _only_match([EN_A, EN_UNRELATED, copy])
    assert set(found) == {(0, 2)}
    assert found[(0, 2)].jaccard >= sim.COPY_THRESHOLD


@pytest.mark.parametrize("original,paraphrase,sentence", [(KO_A, KO_PARAPHRASE, KO_SENTENCE),
                                                          (EN_A, EN_PARAPHRASE, EN_SENTENCE)])
def test_exm9_paraphrase_with_one_copied_sentence_is_reported_and_marked(original, paraphrase, sentence):
    """Jaccard is low, but one copied passage of a long-passage length is reported; the
    passages in BOTH original strings are exactly the copied sentence."""
    report, found = _only_match([original, paraphrase])
    assert set(found) == {(0, 1)}
    m = found[(0, 1)]
    assert m.jaccard < sim.COPY_THRESHOLD
    assert m.longest >= sim.PROFILES[report.profile].long_passage
    (sa, ea), = m.passages["a"]
    (sb, eb), = m.passages["b"]
    # Maximal common runs: the sentence, plus at most a letter or two the texts happen to
    # share around it (both preceding sentences end in "다").
    assert _norm(original[sa:ea]) == _norm(paraphrase[sb:eb])
    assert _norm(sentence) in _norm(original[sa:ea])
    assert len(_norm(original[sa:ea])) - len(_norm(sentence)) <= 2
    # The offsets fall on the original's characters: the passage ends on the sentence's own last letter.
    assert paraphrase[sb:eb].endswith(sentence.rstrip("."))


def test_exm9_unrelated_answers_are_not_reported():
    assert sim.find_copied_texts([KO_A, KO_UNRELATED]).matches == []
    assert sim.find_copied_texts([EN_A, EN_UNRELATED]).matches == []


def test_exm9_short_answers_are_skipped():
    report = sim.find_copied_texts(["사회복지사", "사회복지사", "case manager", "case manager"])
    assert report.matches == [] and sorted(report.skipped) == [0, 1, 2, 3] and report.compared == 0


def test_exm9_restating_the_prompt_is_not_copying():
    prompt = "사례관리의 의의와 과정을 설명하고 지역사회 자원 연계가 왜 중요한지 논하시오."
    a = prompt + " " + KO_UNRELATED[:60]
    b = prompt + " " + KO_A[:60]
    assert sim.find_copied_texts([a, b]).matches != []  # the prompt alone would make them "copies"
    assert sim.find_copied_texts([a, b], exclude=[prompt]).matches == []


def test_exm9_a_short_answer_copied_into_a_longer_one_is_reported_by_coverage():
    short = KO_SENTENCE + " 그리고 지역사회 자원을 연계한다."
    long = KO_UNRELATED + " " + short + " " + KO_UNRELATED[:40]
    _, found = _only_match([short, long])
    m = found[(0, 1)]
    assert m.coverage >= sim.CONTAINMENT_THRESHOLD and m.jaccard < sim.COPY_THRESHOLD


def test_exm9_overlapping_passages_of_two_texts():
    a = "서론입니다. " + KO_SENTENCE + " 결론은 따로 썼다."
    b = KO_SENTENCE.replace(" ", "  ") + "\n전혀 다른 이야기를 이어 간다."
    p = sim.overlapping_passages(a, b)
    (sa, ea), = p.a
    (sb, eb), = p.b
    assert _norm(a[sa:ea]) == _norm(b[sb:eb]) == _norm(KO_SENTENCE)
    assert p.as_dict() == {"a": [[sa, ea]], "b": [[sb, eb]]}


def test_exm9_common_runs_and_merging():
    a = [1, 2, 3, 4, 9, 5, 6]
    b = [7, 1, 2, 3, 4, 8, 5, 6]
    assert sorted(sim.common_runs(a, b, 1)) == [(0, 1, 4), (5, 6, 2)]
    assert sim.common_runs(a, b, 3) == [(0, 1, 4)]
    assert sim.common_runs([0, 0, 1], [0, 0, 1], 1) == [(2, 2, 1)]  # excluded shingles never match
    assert sim.merge_spans([[5, 9], [0, 2], [2, 4], [8, 12], [20, 20]]) == [[0, 4], [5, 12]]


def test_exm9_marked_segments_cover_the_text_and_clamp():
    segs = sim.marked_segments("abcdef", [[1, 3], [2, 4], [10, 12]])
    assert segs == [("a", False), ("bcd", True), ("ef", False)]
    assert "".join(s for s, _ in segs) == "abcdef"
    assert sim.marked_segments("", []) == [("", False)]


# --- MinHash, LSH, anchors at scale ----------------------------------------------------------

def _random_texts(n: int, seed: int, lang: str = "ko") -> list[str]:
    rng = random.Random(seed)
    if lang == "ko":
        syl = "가나다라마바사아자차카타파하거너더러머버서어저처커터퍼허고노도로모보소오조초코토포호구누두루무부수우주"
        words = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(3000)]
        parts = ["은", "는", "이", "가", "을", "를", "의", "에", ""]
        return [" ".join(rng.choice(words) + rng.choice(parts) for _ in range(rng.randint(60, 120))) + "."
                for _ in range(n)]
    words = ["".join(rng.choice("bcdfghklmnprstvw") + rng.choice("aeiou") for _ in range(rng.randint(1, 3)))
             for _ in range(3000)] + ["the", "of", "and", "to", "in", "is", "that"] * 60
    return [" ".join(rng.choice(words) for _ in range(rng.randint(60, 120))) + "." for _ in range(n)]


def test_exm9_minhash_estimates_jaccard():
    rng = random.Random(7)
    base = list(range(1, 5001))
    for share in (0.2, 0.5, 0.8):
        common = rng.sample(base, int(2000 * share))
        a = set(common) | set(rng.sample(range(10_000, 20_000), 2000 - len(common)))
        b = set(common) | set(rng.sample(range(20_000, 30_000), 2000 - len(common)))
        hashes_a = [sim.shingle_hashes(str(x).rjust(5, "0"), 5)[0] for x in a]
        hashes_b = [sim.shingle_hashes(str(x).rjust(5, "0"), 5)[0] for x in b]
        exact = len(a & b) / len(a | b)
        est = sim.signature_similarity(sim.minhash(hashes_a), sim.minhash(hashes_b))
        assert abs(est - exact) < 0.15, (share, exact, est)
    assert sim.minhash([]) is None
    # Densification: a handful of shingles still gives a full, deterministic signature.
    few = sim.minhash([11, 22, 33])
    assert len(few) == sim.NUM_PERM and few == sim.minhash([33, 22, 11])


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_exm9_lsh_finds_the_copied_pair_among_300_random_texts(lang):
    """Not every pair is compared: LSH and anchors propose a few candidates, among them the
    planted whole copy (0 ↔ 150) and the planted copied passage (10 ↔ 200)."""
    texts = _random_texts(300, seed=20270615, lang=lang)
    texts[150] = texts[0].replace(" ", "  ").upper()  # a whole copy, re-spaced
    words = texts[10].split()
    texts[200] = " ".join(texts[200].split()[:30] + words[20:50] + texts[200].split()[30:])
    report = sim.find_copied_texts(texts)
    pairs = {(m.a, m.b) for m in report.matches}
    assert pairs == {(0, 150), (10, 200)}
    assert report.candidates < 0.05 * len(list(combinations(range(300), 2)))
    m = next(m for m in report.matches if (m.a, m.b) == (10, 200))
    (sa, ea), = m.passages["a"]
    (sb, eb), = m.passages["b"]
    assert _norm(texts[10][sa:ea]) == _norm(texts[200][sb:eb])
    assert _norm(" ".join(words[21:49])) in _norm(texts[200][sb:eb])
    assert [(m.a, m.b) for m in report.matches][0] == (0, 150)  # ranked first


def test_exm9_candidate_search_is_deterministic():
    texts = _random_texts(60, seed=3)
    texts[5] = texts[4]
    one = sim.find_copied_texts(texts)
    two = sim.find_copied_texts(list(texts))
    assert [(m.a, m.b, m.score) for m in one.matches] == [(m.a, m.b, m.score) for m in two.matches]
    assert one.candidates == two.candidates


def test_exm9_identical_groups_report_every_pair():
    texts = [KO_A, KO_UNRELATED, KO_A.replace(" ", ""), KO_A + "!!"]
    pairs = {(m.a, m.b) for m in sim.find_copied_texts(texts).matches}
    assert pairs == {(0, 2), (0, 3), (2, 3)}


def test_exm9_pairs_per_item_are_capped():
    texts = [KO_A] * 6
    report = sim.find_copied_texts(texts, max_pairs=10)
    assert len(report.matches) == 10 and report.truncated == 5


# --- objective items -------------------------------------------------------------------------

def test_exm9_identical_wrong_answers_ranked_by_rarity():
    # 40 learners; key 2. 20 right, 12 chose the popular distractor 1, 3 chose 3, 2 chose 0,
    # 3 left it blank.
    answers = ([(f"r{i}", 2, 2) for i in range(20)] + [(f"p{i}", 1, 2) for i in range(12)]
               + [("x1", 3, 2), ("x2", 3, 2), ("x3", 3, 2), ("y1", 0, 2), ("y2", 0, 2)]
               + [("n1", None, 2), ("n2", None, 2), ("n3", None, 2)])
    groups = sim.identical_wrong_answers("single_choice", answers)
    # max group for 37 answerers: max(2, min(8, 3)) = 3 → the popular distractor is left out.
    assert [(g.value, g.members, g.answered) for g in groups] == [(0, ("y1", "y2"), 37), (3, ("x1", "x2", "x3"), 37)]
    assert groups[0].score > groups[1].score  # rarer first
    assert groups[0].score == round(1 - 2 / 37, 4)
    pairs = sim.wrong_answer_pairs(groups)
    assert [(a, b) for a, b, _ in pairs] == [("y1", "y2"), ("x1", "x2"), ("x1", "x3"), ("x2", "x3")]


def test_exm9_multiple_choice_answers_compare_as_sets_and_keys_per_version():
    answers = [("a", [3, 1], [0, 1]), ("b", [1, 3], [0, 1]), ("c", [0, 1], [0, 1]), ("d", [1, 0], [0, 1]),
               ("e", [2], [0, 1]), ("f", [], [0, 1])] + [(f"r{i}", [0, 1], [0, 1]) for i in range(20)]
    groups = sim.identical_wrong_answers("multiple_choice", answers)
    assert [(g.value, g.members) for g in groups] == [((1, 3), ("a", "b"))]
    # A learner shown a version whose key is 3 answered 3: right for them, not a shared wrong answer.
    single = [("a", 3, 2), ("b", 3, 3)] + [(f"r{i}", 2, 2) for i in range(20)]
    assert sim.identical_wrong_answers("single_choice", single) == []


def test_exm9_wrong_answer_everyone_gave_is_not_evidence():
    assert sim.identical_wrong_answers("single_choice", [("a", 1, 2), ("b", 1, 2)]) == []
    groups = sim.identical_wrong_answers("single_choice", [("a", 1, 2), ("b", 1, 2), ("c", 2, 2)])
    assert [g.members for g in groups] == [("a", "b")]


def test_exm9_short_answers_compare_normalised_against_every_accepted_key():
    key = ["사회복지사", "social worker"]
    answers = [("a", "사회 복지사", key), ("b", "Social-Worker", key), ("c", "상담사", key), ("d", "상담 사!", key),
               ("e", "", key)] + [(f"r{i}", "사회복지사", key) for i in range(20)]
    groups = sim.identical_wrong_answers("short_answer", answers)
    assert [(g.value, g.members) for g in groups] == [("상담사", ("c", "d"))]
    assert sim.canonical_answer("single_choice", True) != sim.canonical_answer("single_choice", 1)
    assert sim.display_value((1, 3)) == [1, 3]
