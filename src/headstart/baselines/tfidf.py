"""Text baseline: TF-IDF of word uni- and bigrams, then a logistic regression (C chosen on validation).

The classic strong baseline for small text classification (e.g. Wang & Manning 2012). TF-IDF is
computed by hand from the fitted vocabulary and idf vector, so the saved state is a JSON
vocabulary and one array: ``x = l2_normalise((1 + log tf) * idf)``, shape ``(n, vocabulary)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from .base import Baseline


class TfidfLogistic(Baseline):
    name = "tfidf_logistic"
    modality = "text"

    def __init__(self, max_features: int = 50_000):
        self.max_features = max_features
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0, np.float32)

    def fit_transform(self, items) -> np.ndarray:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=self.max_features)
        vectorizer.fit(list(items))
        self.vocabulary = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
        self.idf = vectorizer.idf_.astype(np.float32)
        return self.transform(items)

    def transform(self, items) -> np.ndarray:
        counts = CountVectorizer(ngram_range=(1, 2), vocabulary=self.vocabulary).transform(list(items)).astype(np.float32)
        counts.data = 1.0 + np.log(counts.data)
        weighted = counts.multiply(self.idf[None, :]).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        return np.asarray(weighted.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]).todense(), dtype=np.float32)

    def state(self):
        return {"max_features": self.max_features, "vocabulary": self.vocabulary}, {"idf": self.idf}

    def set_state(self, settings, arrays):
        self.max_features = settings["max_features"]
        self.vocabulary = {str(k): int(v) for k, v in settings["vocabulary"].items()}
        self.idf = arrays["idf"]
