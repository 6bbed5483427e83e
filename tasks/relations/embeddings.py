"""Semantic neighbours: item text embeddings (cached in the warehouse) and cosine top-K.

Encoding is the slow part, so every vector is cached in `item_embeddings` under (model, sha256 of
the exact text encoded): a rerun encodes only new or edited items. The top-K is exact below
`defaults.ANN_SWITCH_ITEMS` items, computed block by block so memory stays O(block x n) instead of
the n x n matrix; exact is quadratic, so larger catalogues use an approximate index (`ann.py`)
unless `index="exact"` is asked for.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import defaults
from ..data.warehouse import run, sql_text, transaction
from .ann import ann_topk, resolve_index

log = logging.getLogger("hoprec.embeddings")

DEFAULT_MODEL = defaults.EMBEDDING_MODEL
DESCRIPTION_CHARS = 200  # METHODS.md: Description: {description[:200]}
LOG_EVERY_BATCHES = 20  # encode (and commit, and log) this many batches at a time
_TOPK_ROWS = 256  # rows selected at a time (bounds the candidate arrays)
_SAMPLE = 8192  # columns sampled per row to bound its k-th best score

Encoder = Callable[[list[str]], np.ndarray]


@dataclass
class EmbedResult:
    """One L2-normalized vector per prepared item; counts are of distinct texts."""

    item_idx: np.ndarray  # int32 [n], ascending
    vectors: np.ndarray  # float32 [n, d], unit rows
    n_items: int
    n_encoded: int  # distinct texts encoded by this call
    n_cached: int  # distinct texts found in the cache

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def item_text(
    title: str | None, categories: Sequence[str | None] | None, description: str | None
) -> str:
    """The text an item is embedded as (METHODS.md); the single definition of it."""
    cats = ", ".join(c for c in (categories or []) if c is not None)
    return (
        f"Title: {title or ''}; Categories: {cats}; "
        f"Description: {(description or '')[:DESCRIPTION_CHARS]}"
    )


def text_sha256(text: str) -> str:
    """Cache key of a text: the sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_model(name: str) -> str:
    """Asset name -> its pulled folder; an existing path -> itself; else a hub id, unchanged."""
    from ..data.assets import ASSETS, pull

    if name in ASSETS:
        root = pull(name)
        if not (root / "config.json").exists() and not (root / "modules.json").exists():
            raise ValueError(f"asset {name!r} is not a sentence-transformers model")
        return str(root)
    path = Path(name).expanduser()
    return str(path) if path.exists() else name


def sentence_encoder(model: str, batch_size: int = 64) -> Encoder:
    """A SentenceTransformer encoder (CUDA when available); loads the model now, so call lazily.

    A local folder is opened with local_files_only, so an embedded asset never touches the hub.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    path = resolve_model(model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info("loading sentence-transformers model %s on %s", path, device)
    st = SentenceTransformer(path, device=device, local_files_only=Path(path).exists())

    def encode(texts: list[str]) -> np.ndarray:
        return st.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    return encode


def _normalize(v: np.ndarray) -> np.ndarray:
    """Unit rows (a zero row stays zero: it scores 0 against everything)."""
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, np.finfo(np.float32).tiny)


def _list_column(vectors: np.ndarray) -> pa.Array:
    """[n, d] float32 -> Arrow list<float> without a Python loop."""
    n, d = vectors.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int64))
    return pa.LargeListArray.from_arrays(offsets, pa.array(vectors.ravel(), pa.float32()))


def _arrow(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, str]) -> pa.Table:
    """A one-statement query of `sql/<name>.sql` as Arrow (a relation: no DB-API copy)."""
    return con.sql(sql_text(name), params=params).to_arrow_table()


def _store(
    con: duckdb.DuckDBPyConnection, model: str, shas: list[str], vectors: np.ndarray
) -> None:
    """Write one chunk of vectors to the cache atomically."""
    new = pa.table({"text_sha256": pa.array(shas, pa.string()), "emb": _list_column(vectors)})
    with transaction(con):
        con.register("emb_new", new)
        try:
            run(con, "embeddings/insert_cache", {"model": model})
        finally:
            con.unregister("emb_new")


def _encode_into_cache(
    con: duckdb.DuckDBPyConnection,
    model: str,
    texts: list[str],
    shas: list[str],
    batch_size: int,
    encoder: Encoder | None,
) -> None:
    """Encode LOG_EVERY_BATCHES batches at a time, committing each: a killed run keeps its work."""
    encode = encoder or sentence_encoder(model, batch_size)
    chunk = batch_size * LOG_EVERY_BATCHES
    t0 = time.perf_counter()
    for a in range(0, len(texts), chunk):
        part = texts[a : a + chunk]
        vecs = np.asarray(encode(part), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(part):
            raise ValueError(f"encoder returned shape {vecs.shape} for {len(part)} texts")
        _store(con, model, shas[a : a + chunk], _normalize(vecs))
        done = a + len(part)
        log.info(
            "embedded %d/%d texts with %s (%.1f texts/s)",
            done,
            len(texts),
            model,
            done / max(time.perf_counter() - t0, 1e-9),
        )


def _vectors(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(item_idx int32, float32 [n, d]) from the item_vectors query."""
    emb = table.column("emb").combine_chunks()
    dims = pc.unique(pc.list_value_length(emb)).to_pylist()
    if len(dims) != 1:
        raise ValueError(
            f"cached vectors of this model have mixed dimensions {sorted(dims)}; "
            f"was a different model saved under the same name?"
        )
    flat = emb.flatten().to_numpy(zero_copy_only=False)
    idx = table.column("item_idx").to_numpy().astype(np.int32)
    return idx, _normalize(flat.reshape(len(idx), dims[0]))


def embed_items(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    encoder: Encoder | None = None,
) -> EmbedResult:
    """Vectors of every item in `item_index` for `dataset`, encoding only texts not yet cached.

    The cache key's model is `model` as given (asset name, path or hub id). An item with no text
    at all is embedded as "Title: {item_id}; Categories: ; Description: "
    (sql/embeddings/item_fields).
    `encoder` (list[str] -> [n, d] array) replaces the SentenceTransformer, e.g. in tests.
    """
    fields = _arrow(con, "embeddings/item_fields", {"dataset": dataset})
    if fields.num_rows == 0:
        raise ValueError(f"dataset {dataset!r} has no prepared items; run `hoprec prepare` first")
    cols = (fields.column(c).to_pylist() for c in ("title", "categories", "description"))
    texts = [item_text(t, c, d) for t, c, d in zip(*cols)]
    shas = [text_sha256(t) for t in texts]
    keys = pa.table(
        {"item_idx": fields.column("item_idx"), "text_sha256": pa.array(shas, pa.string())}
    )
    con.register("emb_keys", keys)
    try:
        missing = [s for (s,) in run(con, "embeddings/missing_texts", {"model": model}).fetchall()]
        if missing:
            by_sha = dict(zip(shas, texts))
            log.info(
                "%s: %d items, %d texts to embed with %s", dataset, len(texts), len(missing), model
            )
            _encode_into_cache(
                con, model, [by_sha[s] for s in missing], missing, batch_size, encoder
            )
        item_idx, vectors = _vectors(_arrow(con, "embeddings/item_vectors", {"model": model}))
    finally:
        con.unregister("emb_keys")
    if len(item_idx) != len(texts):
        raise RuntimeError(
            f"{len(texts) - len(item_idx)} items have no cached vector after encoding"
        )
    return EmbedResult(item_idx, vectors, len(texts), len(missing), len(set(shas)) - len(missing))


def _topk_rows(neg: np.ndarray, kk: int, out_idx: np.ndarray, out_score: np.ndarray) -> None:
    """Top-kk of rows of negated scores (self already +inf), ordered by (score desc, index asc).

    The kk-th best of a column sample bounds each row's true kk-th best, so every entry that can
    be in the answer, ties at the k-th place included, passes `neg <= bound`; the few candidates
    (about kk * n / sample per row) are then sorted stably, which keeps smaller indices first.
    Cheaper than argpartition over whole rows, and exact without special cases for ties.
    """
    b, n = neg.shape
    step = max(1, n // max(_SAMPLE, kk + 1))  # >= kk + 1 sampled columns, self at most once
    bound = np.partition(neg[:, ::step], kk - 1, axis=1)[:, kk - 1 : kk]
    flat = np.flatnonzero(neg <= bound)  # row-major: ascending index within a row
    rows, cols = np.divmod(flat, n)
    counts = np.bincount(rows, minlength=b)
    pos = np.arange(len(flat)) - (np.cumsum(counts) - counts)[rows]
    vals = np.full((b, counts.max()), np.inf, np.float32)
    vals[rows, pos] = neg.ravel()[flat]
    idx = np.zeros(vals.shape, np.int64)
    idx[rows, pos] = cols
    order = np.argsort(vals, axis=1, kind="stable")[:, :kk]
    out_idx[:] = np.take_along_axis(idx, order, axis=1)
    out_score[:] = -np.take_along_axis(vals, order, axis=1)


def cosine_topk(
    vectors: np.ndarray, k: int, block: int = 2048, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k neighbours of every row (or of `rows` only) by dot product (cosine for unit
    rows), self excluded.

    Returns (neighbours int64 [n, k'], scores float32 [n, k']) with k' = min(k, n - 1), each row by
    score descending then neighbour index ascending. Self is excluded by index, so identical
    vectors are still each other's neighbours. Peak memory is the block x n float32 score block
    plus small per-256-row candidate arrays (up to 256 x n when most vectors are duplicates),
    never the n x n matrix.
    """
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"vectors must be 2-d, got shape {v.shape}")
    if k < 0 or block < 1:
        raise ValueError(f"need k >= 0 and block >= 1, got k={k}, block={block}")
    n = v.shape[0]
    query = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    kk = max(0, min(k, n - 1))
    nbrs = np.empty((len(query), kk), np.int64)
    scores = np.empty((len(query), kk), np.float32)
    if kk == 0:
        return nbrs, scores
    if not np.isfinite(v).all():
        raise ValueError("vectors contain NaN or infinity")
    # A separate transposed copy: `v @ v.T` on one buffer takes OpenBLAS's syrk path, which
    # segfaults for large n (numpy/numpy#19685; here from n = 28,000 with one block).
    vt = v.T.copy()
    buf = np.empty((min(block, len(query)), n), np.float32)
    for start in range(0, len(query), block):
        stop = min(start + block, len(query))
        neg = buf[: stop - start]
        np.matmul(v[query[start:stop]], vt, out=neg)
        np.negative(neg, out=neg)  # ascending partition = best first
        neg[np.arange(stop - start), query[start:stop]] = np.inf
        for a in range(0, stop - start, _TOPK_ROWS):
            b = min(a + _TOPK_ROWS, stop - start)
            _topk_rows(neg[a:b], kk, nbrs[start + a : start + b], scores[start + a : start + b])
    return nbrs, scores


def neighbor_table(item_idx: np.ndarray, nbrs: np.ndarray, scores: np.ndarray) -> pa.Table:
    """Rows (src, dst, score, rank) in item_idx terms, rank 1 = most similar."""
    n, kk = nbrs.shape
    return pa.table(
        {
            "src": pa.array(np.repeat(item_idx, kk).astype(np.int32)),
            "dst": pa.array(item_idx[nbrs].ravel().astype(np.int32)),
            "score": pa.array(scores.ravel().astype(np.float32)),
            "rank": pa.array(np.tile(np.arange(1, kk + 1, dtype=np.int32), n)),
        }
    )


def semantic_topk(
    vectors: np.ndarray, k: int, index: str = defaults.SEMANTIC_INDEX, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """`cosine_topk`'s answer, exactly or from the approximate index (see `ann.resolve_index`).

    Both order a row by score descending, then index ascending, and leave the item itself out
    by index. Rows whose probed lists held fewer than k candidates are computed exactly.
    """
    n = len(vectors)
    how = resolve_index(index, n)
    t0 = time.perf_counter()
    if how == "exact":
        nbrs, scores = cosine_topk(vectors, k, block)
    else:
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        nbrs, scores = ann_topk(vectors, k)
        short = np.flatnonzero(~np.isfinite(scores).all(axis=1))  # fewer than k candidates
        if len(short):
            nbrs[short], scores[short] = cosine_topk(vectors, k, block, rows=short)
    log.info(
        "semantic top-%d of %d items: %s (%s) in %.1f s", k, n, how, index, time.perf_counter() - t0
    )
    return nbrs, scores


def semantic_neighbors(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    model: str = DEFAULT_MODEL,
    k: int = 10,
    block: int = 2048,
    encoder: Encoder | None = None,
    batch_size: int = 64,
    index: str = defaults.SEMANTIC_INDEX,
) -> tuple[pa.Table, EmbedResult]:
    """Each prepared item's top-k semantic neighbours (src, dst, score, rank) + vectors.

    `index` ("exact" | "ann" | "auto") picks exact or approximate search; "auto" is exact below
    `defaults.ANN_SWITCH_ITEMS` items.
    """
    emb = embed_items(con, dataset, model, batch_size, encoder)
    nbrs, scores = semantic_topk(emb.vectors, k, index, block)
    return neighbor_table(emb.item_idx, nbrs, scores), emb
