"""Text embedders.

The default embedder is deterministic and local: words and word bigrams are feature-hashed into
buckets and each bucket owns a fixed pseudo-random direction (a random projection of the hashed
bag of words). Texts that share words land close together, nothing is downloaded, and the same
text always gets the same vector on every machine.
"""

from __future__ import annotations

import itertools
import re
import zlib
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

_TOKEN = re.compile(r"[a-z0-9]+")


class Embedder(Protocol):
    """Anything that turns text into unit-length float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, text: str) -> Vector: ...

    def embed_many(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


class HashingEmbedder:
    """Feature hashing of words + bigrams, projected onto fixed random directions."""

    name = "hashing"

    def __init__(self, dim: int = 256, buckets: int = 8192, seed: int = 20240601) -> None:
        self.dim = dim
        self._buckets = buckets
        rng = np.random.Generator(np.random.PCG64(seed))
        # Gaussian directions are nearly orthogonal in high dimension, so distinct words stay apart.
        self._directions = rng.standard_normal((buckets, dim), dtype=np.float32)
        self._directions /= np.linalg.norm(self._directions, axis=1, keepdims=True)

    def _features(self, text: str) -> tuple[list[int], list[float]]:
        words = _TOKEN.findall(text.lower())
        idx: list[int] = []
        weights: list[float] = []
        for w in words:
            idx.append(zlib.crc32(w.encode()) % self._buckets)
            weights.append(1.0)
        for a, b in itertools.pairwise(words):
            idx.append(zlib.crc32(f"{a} {b}".encode()) % self._buckets)
            weights.append(0.5)
        return idx, weights

    def embed(self, text: str) -> Vector:
        idx, weights = self._features(text)
        if not idx:
            # Text without a single word still needs a valid unit vector.
            idx, weights = [zlib.crc32(text.encode()) % self._buckets], [1.0]
        vec = np.asarray(weights, dtype=np.float32) @ self._directions[idx]
        norm = float(np.linalg.norm(vec))
        out: Vector = (vec / norm if norm > 0 else self._directions[idx[0]]).astype(np.float32)
        return out

    def embed_many(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.embed(t) for t in texts])


class SentenceModelEmbedder:
    """A real sentence-transformers model, used only where one is installed locally.

    The model is loaded with the hub switched off, so a missing model is a clear error rather than
    a download.
    """

    name = "sentence-transformers"

    def __init__(self, model: str) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on optional extra
            raise RuntimeError(
                "the sentence-transformers extra is not installed: pip install 'profkit[embeddings]'"
            ) from exc
        self._model = SentenceTransformer(model, device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)
        self.name = f"sentence-transformers:{model}"

    def embed(self, text: str) -> Vector:
        out: Vector = self.embed_many([text])[0]
        return out

    def embed_many(self, texts: list[str]) -> npt.NDArray[np.float32]:
        out = self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)


def make_embedder(spec: str = "hashing", dim: int = 256) -> Embedder:
    """Build an embedder from a spec: ``hashing`` or ``st:<model name or local path>``."""
    if spec == "hashing":
        return HashingEmbedder(dim=dim)
    if spec.startswith("st:"):
        return SentenceModelEmbedder(spec[3:])
    raise ValueError(f"unknown embedder {spec!r}: use 'hashing' or 'st:<model>'")
