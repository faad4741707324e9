"""Benchmark: copied-answer detection (EXM-9) over 800 essays of ~300 words.

    .venv/bin/python bench/bench_copydetect.py [--essays 800] [--words 300] [--lang ko,en] [--no-service]

One command. For each language (Korean-like and English-like synthetic text from a fixed
seed) it generates the essays of one item — every essay independent, drawn from a Zipf
vocabulary with shared topic terms and the prompt restated in some of them — and plants
known copies between 100 distinct essays (50 pairs):

- 20 whole copies, lightly disguised: spacing changed (띄어쓰기), punctuation changed,
  ~5% of the words replaced, some particles/endings swapped;
- 20 partial copies: three consecutive sentences of one essay inserted into another;
- 10 single-sentence copies: one sentence of ≥ 20 words inserted into another essay.

Then ``lms.proctoring.similarity.find_copied_texts`` runs end to end (normalise, shingle,
MinHash + LSH, winnowing anchors, exact verification, passages): wall time (best of
``--repeat``), peak RSS during the call (VmHWM reset before it) and ``getrusage`` maxrss, a
separate run under ``tracemalloc`` for the peak of Python allocations, candidate pairs,
reported pairs, recall of the planted pairs and the unplanted pairs reported.

Unless ``--no-service``: the same essays through the service (``run_copy_detection``) on a
fresh SQLite database (a course, one essay item, an exam, 800 learners with submitted
attempts inserted in bulk): wall time, and recall from the stored ``similar_pair`` rows.

Target: < 30 s for the pure detection of 800 essays. A JSON report goes to
``bench/results/bench_copydetect-<time>.json``. Exit status 2 when recall of the planted
pairs is below 100% (an invalid run), 1 with ``--check-targets`` when the target is missed.
"""
from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (BENCH_DIR, current_rss_mib, load_average, log, machine_info, peak_rss_mib,  # noqa: E402
                    peak_rss_since_reset_mib, reset_peak_rss)

TARGET_S = 30.0

# --- synthetic text ------------------------------------------------------------------------

KO_SYLLABLES = ("가 각 간 감 개 거 건 검 게 결 경 계 고 공 과 관 교 구 국 군 권 규 균 그 근 금 기 긴 김 나 남 내 "
                "노 녹 논 뇌 누 눈 능 다 단 담 당 대 도 독 동 두 득 등 라 락 란 람 량 려 력 련 령 로 록 론 료 "
                "루 류 률 리 린 림 마 만 말 망 매 면 명 모 목 무 문 물 미 민 바 박 반 발 방 배 백 범 법 변 별 "
                "병 보 복 본 봉 부 북 분 불 비 빈 사 산 상 새 생 서 석 선 설 성 세 소 속 손 수 순 술 시 식 신 "
                "실 심 아 악 안 압 애 야 약 양 어 언 업 여 역 연 열 영 예 오 옥 온 완 왕 외 요 욕 용 우 운 원 "
                "위 유 육 윤 은 음 응 의 이 인 일 임 자 작 장 재 적 전 절 점 정 제 조 족 존 종 좌 주 준 중 증 "
                "지 직 진 질 집 차 착 참 창 책 처 천 철 청 체 초 촌 총 최 추 축 춘 출 충 취 측 치 칙 친 타 탁 "
                "탄 태 택 토 통 퇴 투 특 파 판 편 평 폐 포 표 품 풍 피 필 하 학 한 함 합 항 해 핵 행 향 허 혁 "
                "현 혈 협 형 혜 호 혼 화 확 환 활 황 회 효 후 훈 휴 흥 희").split()
KO_PARTICLES = ("은", "는", "이", "가", "을", "를", "의", "에", "에서", "으로", "로", "와", "과", "도", "만", "에게")
KO_ENDINGS = ("한다", "이다", "된다", "있다", "없다", "하였다", "해야 한다", "할 수 있다", "라고 본다", "필요하다")
KO_TOPIC = ("사회복지", "실천", "클라이언트", "사례관리", "지역사회", "자원", "옹호", "권리", "욕구", "평가",
            "개입", "서비스", "전문가", "윤리", "가치", "정책", "복지국가", "취약계층", "상담", "연계")
KO_PROMPT = "사회복지실천에서 사례관리의 의의와 과정을 설명하고 지역사회 자원 연계의 중요성을 논하시오."

EN_CONSONANTS = "b c d f g h j k l m n p r s t v w z st tr pl gr ch sh th".split()
EN_VOWELS = "a e i o u ea ou ai io".split()
EN_FUNCTION = ("the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "with", "be", "on", "by",
               "this", "are", "which", "or", "from", "an", "can", "their", "not", "also", "more", "these")
EN_TOPIC = ("welfare", "practice", "client", "case", "management", "community", "resources", "advocacy",
            "rights", "needs", "assessment", "intervention", "services", "professional", "ethics", "values",
            "policy", "state", "vulnerable", "counselling")
EN_PROMPT = ("Explain the meaning and process of case management in social welfare practice and discuss "
             "why linking community resources matters.")


class TextGen:
    """Independent essays on one prompt: a Zipf vocabulary of ~4000 words, topic terms,
    sentences of 8–18 words; sometimes the prompt restated at the start."""

    def __init__(self, lang: str, rng: random.Random):
        self.lang, self.rng = lang, rng
        words: set[str] = set()
        while len(words) < 4000:
            if lang == "ko":
                words.add("".join(rng.choice(KO_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 2, 3, 3)))))
            else:
                words.add("".join(rng.choice(EN_CONSONANTS) + rng.choice(EN_VOWELS)
                                  for _ in range(rng.choice((1, 2, 2, 3, 3)))) + rng.choice(("", "s", "n", "r", "l")))
        self.vocab = sorted(words)
        rng.shuffle(self.vocab)
        self.cum = list(itertools.accumulate(1.0 / (r + 1) ** 1.05 for r in range(len(self.vocab))))
        self.topic = KO_TOPIC if lang == "ko" else EN_TOPIC
        self.prompt = KO_PROMPT if lang == "ko" else EN_PROMPT

    def word(self) -> str:
        rng = self.rng
        r = rng.random()
        if self.lang == "ko":
            w = rng.choice(self.topic) if r < 0.15 else rng.choices(self.vocab, cum_weights=self.cum)[0]
            return w + rng.choice(KO_PARTICLES) if rng.random() < 0.6 else w
        if r < 0.35:
            return rng.choice(EN_FUNCTION)
        return rng.choice(self.topic) if r < 0.47 else rng.choices(self.vocab, cum_weights=self.cum)[0]

    def sentence(self, n: int | None = None) -> list[str]:
        n = n or self.rng.randint(8, 18)
        words = [self.word() for _ in range(n - (1 if self.lang == "ko" else 0))]
        if self.lang == "ko":
            words.append(self.rng.choice(KO_ENDINGS) + ".")
        else:
            words[0] = words[0].capitalize()
            words[-1] += "."
        return words

    def essay(self, words: int) -> list[list[str]]:
        out: list[list[str]] = []
        total = 0
        if self.rng.random() < 0.3:
            p = self.prompt.split()
            out.append(p)
            total += len(p)
        while total < words:
            s = self.sentence()
            out.append(s)
            total += len(s)
        return out


def render(sentences: list[list[str]], rng: random.Random | None = None) -> str:
    paras, cur = [], []
    for s in sentences:
        cur.append(" ".join(s))
        if rng is not None and rng.random() < 0.2:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(paras)


def disguise(sentences: list[list[str]], gen: TextGen, rng: random.Random) -> str:
    """A whole copy, lightly edited: words replaced, particles changed, spacing and
    punctuation altered."""
    out = []
    for s in sentences:
        t = []
        for w in s:
            r = rng.random()
            if r < 0.05:
                w = gen.word()
            elif gen.lang == "ko" and r < 0.10 and w[-1:] in "은는이가을를":
                w = w[:-1] + rng.choice("은는이가을를")
            t.append(w)
        text = " ".join(t)
        if gen.lang == "ko":  # re-spacing: join some words, split nothing
            parts = text.split(" ")
            text = parts[0] + "".join(("" if rng.random() < 0.15 else " ") + p for p in parts[1:])
        text = text.replace(".", rng.choice((".", "!", ". ", "..")), 1)
        out.append(text)
    return "\n".join(out)


def build_item(lang: str, essays: int, words: int, seed: int):
    """(texts, prompt, planted pairs {(i, j): kind})."""
    rng = random.Random(f"{seed}-{lang}")
    gen = TextGen(lang, rng)
    docs = [gen.essay(words) for _ in range(essays)]
    texts = [render(d, rng) for d in docs]
    involved = rng.sample(range(essays), 100)
    planted: dict[tuple[int, int], str] = {}
    plan = ["whole"] * 20 + ["partial"] * 20 + ["sentence"] * 10
    for n, kind in enumerate(plan):
        src, dst = involved[2 * n], involved[2 * n + 1]
        if kind == "whole":
            texts[dst] = disguise(docs[src], gen, rng)
        elif kind == "partial":
            start = rng.randrange(0, max(1, len(docs[src]) - 3))
            passage = docs[src][start:start + 3]
            at = rng.randrange(1, len(docs[dst]))
            texts[dst] = render(docs[dst][:at] + passage + docs[dst][at:], rng)
        else:
            long_ones = [s for s in docs[src] if len(s) >= 16] or [gen.sentence(20)]
            sent = rng.choice(long_ones)
            if len(sent) < 20:
                sent = sent + gen.sentence(20 - len(sent) + 1)
                docs[src].append(sent)
                texts[src] = render(docs[src], rng)
            at = rng.randrange(1, len(docs[dst]))
            texts[dst] = render(docs[dst][:at] + [sent] + docs[dst][at:], rng)
        planted[(min(src, dst), max(src, dst))] = kind
    return texts, gen.prompt, planted


# --- measurements --------------------------------------------------------------------------

def detect(texts, prompt):
    from lms.proctoring.similarity import find_copied_texts

    return find_copied_texts(texts, exclude=[prompt])


def score(pairs: set[tuple[int, int]], planted: dict) -> dict:
    found = {k: 0 for k in ("whole", "partial", "sentence")}
    total = {k: 0 for k in found}
    for p, kind in planted.items():
        total[kind] += 1
        found[kind] += p in pairs
    return {"recall": sum(found.values()) / len(planted), "found": found, "planted": total,
            "unplanted_reported": len(pairs - set(planted))}


def run_pure(lang: str, args) -> dict:
    t = time.perf_counter()
    texts, prompt, planted = build_item(lang, args.essays, args.words, args.seed)
    words = sum(len(x.split()) for x in texts) / len(texts)
    log(f"{lang}: {len(texts)} essays, {words:.0f} words and {sum(map(len, texts)) / len(texts):.0f} "
        f"characters each on average, {len(planted)} planted pairs (generated in {time.perf_counter() - t:.1f}s)")
    detect(texts[:20], prompt)  # warm-up: imports, the probe table
    gc.collect()
    times = []
    rss0 = current_rss_mib()
    reset = reset_peak_rss()
    cpu = time.process_time()
    for _ in range(args.repeat):
        t = time.perf_counter()
        report = detect(texts, prompt)
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu) / args.repeat
    peak = peak_rss_since_reset_mib() if reset else peak_rss_mib()
    pairs = {(m.a, m.b) for m in report.matches}
    res = {"essays": len(texts), "avg_words": round(words, 1), "avg_chars": round(sum(map(len, texts)) / len(texts)),
           "profile": report.profile, "seconds": min(times), "seconds_all": times, "cpu_seconds": cpu,
           "candidate_pairs": report.candidates, "reported_pairs": len(report.matches),
           "rss_before_mib": rss0, "peak_rss_mib": peak, "rss_growth_mib": peak - rss0,
           **score(pairs, planted)}
    if not args.no_tracemalloc:
        gc.collect()
        tracemalloc.start()
        t = time.perf_counter()
        detect(texts, prompt)
        res["tracemalloc_seconds"] = time.perf_counter() - t
        res["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    res["top_scores"] = [[m.a, m.b, m.score, planted.get((m.a, m.b), "UNPLANTED")] for m in report.matches[:5]]
    missed = [[a, b, k] for (a, b), k in planted.items() if (a, b) not in pairs]
    res["missed"] = missed
    log(f"  find_copied_texts: {res['seconds']:.2f}s (CPU {cpu:.2f}s), {report.candidates} candidate pairs, "
        f"{len(report.matches)} reported; recall {res['recall']:.0%} {res['found']}, "
        f"{res['unplanted_reported']} unplanted reported; peak RSS {peak:.0f} MiB (+{peak - rss0:.0f} MiB)"
        + (f", tracemalloc peak {res['tracemalloc_peak_mib']:.1f} MiB" if "tracemalloc_peak_mib" in res else ""))
    return res, texts, prompt, planted


def run_service(lang: str, texts: list[str], prompt: str, planted: dict, seed: int) -> dict:
    """The service on a fresh SQLite database: bulk rows, then run_copy_detection."""
    from sqlalchemy import insert, select

    tmp = Path(tempfile.mkdtemp(prefix="bench-copydetect-"))
    os.environ.update({"LMS_ENV": "development", "LMS_DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
                       "LMS_MEDIA_ROOT": str(tmp / "media"), "LMS_REDIS_PREFIX": f"lmsbench-cd-{seed}"})
    from flask_migrate import upgrade

    from lms import create_app
    from lms.auth import service as auth
    from lms.auth.models import User
    from lms.content import service as content
    from lms.db import db
    from lms.exams.models import Attempt, AttemptItem, Exam, Item, ItemVersion
    from lms.proctoring.copydetect import run_copy_detection
    from lms.proctoring.models import SimilarPair

    app = create_app()
    try:
        with app.app_context():
            upgrade()
            now = datetime.now(timezone.utc)
            admin = auth.create_user(username="bench-admin", password="bench-Password-2026!", role="admin")
            course = content.create_course(admin, code=f"CD-{lang}", title="복사 답안 벤치", credits=3,
                                           starts_on=now.date(), weeks=15, capacity=800)
            item = Item(course_id=course.id, current_version=1, difficulty="hard", kind="essay", active=True,
                        created_at=now)
            db.session.add(item)
            db.session.flush()
            version = ItemVersion(item_id=item.id, version=1, difficulty="hard", kind="essay", prompt=prompt,
                                  model_answer="모범답안", rubric="채점기준", points=10.0, created_at=now)
            exam = Exam(course_id=course.id, title="기말고사", kind="final", opens_at=now - timedelta(hours=2),
                        closes_at=now - timedelta(hours=1), duration_minutes=60, items_per_difficulty={"hard": 1},
                        status="closed", created_at=now)
            db.session.add_all([version, exam])
            db.session.commit()
            pw = auth.hash_password("bench-Password-2026!")
            db.session.execute(insert(User), [
                {"institution_id": admin.institution_id, "username": f"cd{i:05d}", "password_hash": pw,
                 "role": "learner", "otp_secret": "JBSWY3DPEHPK3PXP", "otp_confirmed": True, "locked": False,
                 "disability": False, "created_at": now} for i in range(len(texts))])
            ids = dict(db.session.execute(select(User.username, User.id).where(User.role == "learner")).all())
            db.session.execute(insert(Attempt), [
                {"exam_id": exam.id, "learner_id": ids[f"cd{i:05d}"], "started_at": now - timedelta(hours=2),
                 "deadline": now - timedelta(hours=1), "submitted_at": now - timedelta(hours=1, minutes=5),
                 "submit_reason": "learner", "seed": str(i), "needs_grading": True} for i in range(len(texts))])
            attempts = dict(db.session.execute(select(Attempt.learner_id, Attempt.id)).all())
            attempt_of = [attempts[ids[f"cd{i:05d}"]] for i in range(len(texts))]
            db.session.execute(insert(AttemptItem), [
                {"attempt_id": attempt_of[i], "item_id": item.id, "item_version_id": version.id, "position": 1,
                 "answer": t, "answered_at": now - timedelta(hours=1, minutes=10)} for i, t in enumerate(texts)])
            db.session.commit()
            exam_id = exam.id
            db.session.remove()
        with app.app_context():
            t = time.perf_counter()
            summary = run_copy_detection(exam_id)
            seconds = time.perf_counter() - t
            index = {a: i for i, a in enumerate(attempt_of)}
            rows = db.session.execute(select(SimilarPair.attempt_a, SimilarPair.attempt_b)
                                      .where(SimilarPair.run_id == summary["run_id"], SimilarPair.kind == "text")).all()
            pairs = {tuple(sorted((index[a], index[b]))) for a, b in rows}
            db.session.remove()
            db.engine.dispose()
    finally:
        for f in tmp.glob("*"):
            f.unlink(missing_ok=True)
        tmp.rmdir()
    res = {"seconds": seconds, "summary": summary, **score(pairs, planted)}
    log(f"  run_copy_detection (SQLite, load + detect + store): {seconds:.2f}s, {summary['text_pairs']} text "
        f"pairs stored; recall {res['recall']:.0%}")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--essays", type=int, default=800)
    p.add_argument("--words", type=int, default=300)
    p.add_argument("--lang", default="ko,en", help="comma-separated: ko, en")
    p.add_argument("--seed", type=int, default=20270615)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--no-tracemalloc", action="store_true")
    p.add_argument("--no-service", action="store_true")
    p.add_argument("--json-out", default=None)
    p.add_argument("--check-targets", action="store_true")
    args = p.parse_args(argv)
    la = load_average()
    results, problems, missed = {}, [], []
    for lang in [x.strip() for x in args.lang.split(",") if x.strip()]:
        res, texts, prompt, planted = run_pure(lang, args)
        if not args.no_service:
            res["service"] = run_service(lang, texts, prompt, planted, args.seed)
        results[lang] = res
        if res["recall"] < 1.0:
            problems.append(f"{lang}: recall {res['recall']:.0%}, missed {res['missed']}")
        if res["seconds"] >= TARGET_S:
            missed.append(lang)
    info = machine_info("SQLite (service run)" if not args.no_service else "none")
    print()
    print(f"copied-answer detection, {info['nproc']} CPUs ({info['cpu_model']}), {info['memory']}, Python "
          f"{info['python']}; load average at start {' '.join(f'{x:.2f}' for x in la)}")
    for lang, r in results.items():
        print(f"{lang}: {r['essays']} essays × {r['avg_words']:.0f} words: {r['seconds']:.2f}s — target < "
              f"{TARGET_S:.0f}s: {'met' if r['seconds'] < TARGET_S else 'MISSED'}; {r['candidate_pairs']} "
              f"candidate pairs, {r['reported_pairs']} reported, recall {r['recall']:.0%}, "
              f"{r['unplanted_reported']} unplanted; peak RSS {r['peak_rss_mib']:.0f} MiB "
              f"(+{r['rss_growth_mib']:.0f} MiB)"
              + (f", tracemalloc peak {r['tracemalloc_peak_mib']:.1f} MiB" if "tracemalloc_peak_mib" in r else "")
              + (f"; service {r['service']['seconds']:.2f}s, recall {r['service']['recall']:.0%}"
                 if "service" in r else ""))
    print(f"process maxrss {peak_rss_mib():.0f} MiB")
    for prob in problems:
        print(f"INVALID RUN: {prob}")
    out = Path(args.json_out) if args.json_out else (
        BENCH_DIR / "results" / f"bench_copydetect-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "load_average_start": la, "args": vars(args), "results": results,
                               "maxrss_mib": peak_rss_mib(), "problems": problems, "targets_missed": missed},
                              indent=2, ensure_ascii=False, default=str))
    log(f"results written to {out}")
    if problems:
        return 2
    if args.check_targets and missed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
