"""Finds red-flag symptoms in a patient's message, with NegEx-style context rules.

Rule-based and deterministic: spaCy's blank English pipeline (knowledge/text.py),
a PhraseMatcher over normalised words, and a symptom lexicon kept as data
(knowledge/red_flags.yml, whose header explains the matching). Used by the
RedFlagDetector NLU component and by scripts/eval_red_flags.py.

Context rules, each named in a match's ``reason`` when it stops a report:
* ``pre_negation``: a negation trigger shortly before the match ("no numbness
  between my legs"), unless a terminator ("but", ";") comes between;
* ``post_negation``: a "fine/normal" phrase shortly after ("my bladder control is
  normal");
* ``pseudo_negation``: trigger words inside phrases like "no longer" or inside the
  symptom itself ("can't pee") never negate;
* ``hypothetical``: the match follows "if", "worried about" ... in its sentence;
* ``asking``: the match follows "what is", "tell me about" ... in its sentence;
* ``question``: the sentence is a question without first-person words ("can it
  cause incontinence?", "can a calcified disc affect bladder control",
  "is incontinence a possible symptom").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from knowledge.text import nlp

Spans = List[Tuple[int, int]]


@dataclass(frozen=True)
class SignMatch:
    """One sign found in the text, with whether it is reported and why not."""

    sign: str
    label: str
    start_char: int
    end_char: int
    text: str
    reported: bool
    reason: str = ""


@dataclass
class Detection:
    """All signs found in a message, and every symptom word with its context."""

    matches: List[SignMatch] = field(default_factory=list)
    # (concept, reason) for each symptom word; reason "" when it is affirmed.
    mentions: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def only_denied(self) -> bool:
        """Symptom words are mentioned, and every one is negated or asked about."""
        return bool(self.mentions) and all(reason for _, reason in self.mentions)

    def _signs(self, reported: bool) -> List[str]:
        signs: List[str] = []
        for match in self.matches:
            if match.reported == reported and match.sign not in signs:
                signs.append(match.sign)
        return signs

    @property
    def reported(self) -> List[str]:
        return self._signs(True)

    @property
    def not_reported(self) -> List[str]:
        return [sign for sign in self._signs(False) if sign not in self.reported]


def _levenshtein_one(a: str, b: str) -> bool:
    """True when a and b differ by exactly one edit (insert, delete, substitute, swap)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diffs) == 1 or (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = sorted((a, b), key=len)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


class RedFlagMatcher:
    """Matches the lexicon against text and applies the context rules."""

    def __init__(self, lexicon: Dict[str, Any]) -> None:
        self.lexicon = lexicon
        self.nlp = nlp()
        self.lemmas = self.nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
        self.spelling = {str(k).lower(): str(v).lower() for k, v in (lexicon.get("spelling") or {}).items()}
        self.context = lexicon["context"]
        self.window = int(self.context.get("window", 6))
        self.signs: Dict[str, Dict[str, Any]] = lexicon["signs"]
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self.vocabulary: set = set()
        self._closest_cache: Dict[str, str] = {}
        for name, phrases in lexicon["concepts"].items():
            self._add(f"C:{name}", phrases)
        for sign, spec in self.signs.items():
            self._add(f"S:{sign}", spec.get("phrases") or [])
        for key in ("pre_triggers", "post_triggers", "pseudo_negations", "terminators",
                    "hypothetical", "asking"):
            self._add(f"X:{key}", self.context.get(key) or [])
        self.question_openers = {self._norm_word(w) for w in self.context["question_openers"]}
        self.first_person = {str(w).lower() for w in self.context["first_person"]}
        self.question_subjects = {self._norm_word(w) for w in self.context.get("question_subjects") or []}
        self.question_topics = {self._norm_word(w) for w in self.context.get("question_topics") or []}
        self.general_question_words = {
            self._norm_word(w) for w in self.context.get("general_question_words") or []}

    # Normalisation ---------------------------------------------------------------

    def _norm_word(self, word: str) -> str:
        return self.lemmas.get(word, word)

    def normalise(self, text: str, fuzzy: bool = True) -> Doc:
        """Tokenise and set each token's NORM to its normalised lemma.

        With ``fuzzy``, a word of 5+ letters one edit away from a lexicon word
        (same first letter) is read as that word: "bladdar" -> "bladder".
        """
        # Lower-case first: spaCy reads "cant" as "can not", but not "CANT".
        lowered = text.lower()
        doc = self.nlp(lowered if len(lowered) == len(text) else text)
        for token in doc:
            norm = self._norm_word(self.spelling.get(token.lower_) or token.norm_.lower())
            if fuzzy and len(norm) >= 5 and norm not in self.vocabulary:
                norm = self._closest(norm)
            token.norm_ = norm
        return doc

    def _closest(self, word: str) -> str:
        """The longest lexicon word one edit away from ``word``, or ``word`` itself."""
        if word not in self._closest_cache:
            close = sorted(
                (v for v in self.vocabulary if v[0] == word[0] and _levenshtein_one(word, v)),
                key=lambda v: (-len(v), v),
            )
            self._closest_cache[word] = close[0] if close else word
        return self._closest_cache[word]

    def _add(self, key: str, phrases: Iterable[Any]) -> None:
        docs = []
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise ValueError(f"{key}: {phrase!r} is not text (quote it in the YAML)")
            doc = self.normalise(phrase, fuzzy=False)
            self.vocabulary.update(t.norm_ for t in doc if t.is_alpha)
            docs.append(doc)
        if docs:
            self.matcher.add(key, docs)

    # Matching --------------------------------------------------------------------

    def detect(self, text: str) -> Detection:
        doc = self.normalise(text or "")
        found: Dict[str, Spans] = {}
        for match_id, start, end in self.matcher(doc):
            found.setdefault(self.nlp.vocab.strings[match_id], []).append((start, end))
        detection = Detection()
        for sentence in doc.sents:
            detection.matches.extend(self._sentence_matches(doc, sentence, found))
            detection.mentions.extend(self._mentions(doc, sentence, found))
        return detection

    def _mentions(self, doc: Doc, sentence: Span, found: Dict[str, Spans]) -> List[Tuple[str, str]]:
        concept_spans = [(key[2:], span) for key, spans in found.items() if key.startswith("C:")
                         for span in self._within(spans, sentence)]
        every = [span for _, span in concept_spans]
        return [(concept, self._reason(doc, sentence, [span], every, found))
                for concept, span in concept_spans]

    @staticmethod
    def _within(spans: Optional[Spans], sentence: Span) -> Spans:
        return [(s, e) for s, e in spans or [] if s >= sentence.start and e <= sentence.end]

    def _sentence_matches(self, doc: Doc, sentence: Span, found: Dict[str, Spans]) -> List[SignMatch]:
        symptom_spans: Spans = []
        candidates: List[Tuple[str, Spans]] = []
        for sign, spec in self.signs.items():
            for span in self._within(found.get(f"S:{sign}"), sentence):
                candidates.append((sign, [span]))
            for group in spec.get("together") or []:
                parts = [self._within(found.get(f"C:{concept}"), sentence) for concept in group]
                if all(parts):
                    candidates.append((sign, [part[0] for part in parts]))
        for _, spans in candidates:
            symptom_spans.extend(spans)
        matches = []
        for sign, spans in candidates:
            reason = self._reason(doc, sentence, spans, symptom_spans, found)
            start, end = min(s for s, _ in spans), max(e for _, e in spans)
            matches.append(SignMatch(
                sign=sign, label=str(self.signs[sign]["label"]),
                start_char=doc[start].idx, end_char=doc[end - 1].idx + len(doc[end - 1]),
                text=doc[start:end].text, reported=not reason, reason=reason,
            ))
        return sorted(matches, key=lambda m: m.start_char)

    def _reason(self, doc: Doc, sentence: Span, spans: Spans, symptom_spans: Spans,
                found: Dict[str, Spans]) -> str:
        """Why the match is not a report, or "" when it is one."""
        def inside(position: int, spans_: Spans) -> bool:
            return any(s <= position < e for s, e in spans_)

        protected = symptom_spans + self._within(found.get("X:pseudo_negations"), sentence)
        terminators = self._within(found.get("X:terminators"), sentence)
        # A hypothetical or asking frame covers a match when it comes before any of
        # its parts ("worried my legs could get weak": "could get" ... "weak").
        last = max(s for s, _ in spans)
        for key, rule in (("X:hypothetical", "hypothetical"), ("X:asking", "asking")):
            for s, e in self._within(found.get(key), sentence):
                if e <= last and not inside(s, protected) \
                        and not any(e <= t < last for t, _ in terminators):
                    return rule
        for start, end in spans:
            for s, e in self._within(found.get("X:pre_triggers"), sentence):
                if e <= start and start - e < self.window and not inside(s, protected) \
                        and not any(e <= t < start for t, _ in terminators):
                    return "pre_negation"
            for s, e in self._within(found.get("X:post_triggers"), sentence):
                if s >= end and s - end < self.window and not inside(s, protected) \
                        and not any(end <= t < s for t, _ in terminators):
                    return "post_negation"
        words = [t for t in sentence if not t.is_punct and not t.is_space]
        # Patients often leave out the "?": "can you have it and feel nothing" still asks,
        # because a question word is followed by a general subject ("can you", "does it");
        # "can't feel anything down there" opens with "can not" and stays a report.
        # A question about the condition itself asks too, "?" or not: "can a calcified
        # herniation affect bladder control", "is incontinence a possible symptom".
        # A negated opener ("can't feel both legs, is it the disc") never asks.
        if any(t.lower_ in self.first_person for t in sentence):
            return ""
        # The condition must come before the sign, as the subject of the question:
        # "is the numbness in both legs from the disc" stays a report.
        first = min(s for s, _ in spans)
        norms = {t.norm_ for t in words}
        ends_with_question_mark = sentence.text.rstrip().endswith("?")
        negated_opener = len(words) > 1 and words[1].norm_ in ("not", "n't")
        about_condition = any(t.norm_ in self.question_topics for t in words if t.i < first)
        asks = ends_with_question_mark or (
            len(words) > 1 and words[1].norm_ in self.question_subjects) or (
            not negated_opener and (about_condition or bool(norms & self.general_question_words)))
        if words and asks and words[0].norm_ in self.question_openers:
            return "question"
        # Without an opener it stays a report, even with a "?": "wet the bed, is that
        # a symptom?" reports first and asks after.
        return ""
