"""Reading a user's file in chunks: CSV/TSV (delimiter sniffed, encoding checked) or Parquet, with the file's
headers mapped to the names we read. A file larger than memory streams: nothing here holds more than one chunk.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from persona_pipeline.errors import LoadError

CHUNK_ROWS = 250_000  # rows typed and staged at a time: memory stays flat whatever the file's size
SNIFF_BYTES = 65_536
COMMA_DECIMAL = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d+$|^-?\d+,\d+$")


@dataclass
class TableSource:
    """One input file: its headers, and chunks of its rows as text (Parquet keeps its types), each chunk with
    a `line` column (the row's line in the file, 2 for the first row after the header)."""

    path: Path
    delimiter: str | None  # None for Parquet
    encoding: str
    headers: list[str]
    renames: dict[str, str] = field(default_factory=dict)  # header -> the name we read it as

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_parquet(self) -> bool:
        return self.delimiter is None

    def chunks(self, names: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The rows in chunks, columns renamed; `names` (ours) limits the columns read (a survey pass)."""
        back = {ours: header for header, ours in self.renames.items()}
        wanted = (
            None if names is None else [back.get(n, n) for n in names] or self.headers[:1]
        )  # rows counted
        offset = 2
        for chunk in self._raw_chunks(wanted):
            chunk.columns = [str(c).strip() for c in chunk.columns]
            chunk = chunk.rename(columns=self.renames)
            chunk.index = pd.RangeIndex(len(chunk))
            chunk["line"] = offset + chunk.index.to_numpy()
            offset += len(chunk)
            yield chunk

    def _raw_chunks(self, columns: list[str] | None) -> Iterator[pd.DataFrame]:
        if self.is_parquet:
            try:
                for batch in pq.ParquetFile(self.path).iter_batches(batch_size=CHUNK_ROWS, columns=columns):
                    yield batch.to_pandas()
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise LoadError(f"{self.path}: not a readable Parquet file: {exc}") from exc
            return
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                reader = pd.read_csv(
                    self.path,
                    sep=self.delimiter,
                    encoding=_reading_encoding(self.encoding),
                    dtype=str,
                    keep_default_na=False,
                    skipinitialspace=True,
                    index_col=False,  # a row with an extra field must not shift every column by one
                    usecols=columns,
                    chunksize=CHUNK_ROWS,
                )
                with reader:
                    for chunk in reader:
                        if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                            raise LoadError(f"{self.path}: {self._longer_row()}; nothing was changed")
                        yield chunk
        except UnicodeDecodeError as exc:
            raise LoadError(_encoding_problem(self.path, self.encoding)) from exc
        except (pd.errors.ParserError, ValueError) as exc:
            raise LoadError(
                f"{self.path}: cannot parse as delimited text with delimiter {self.delimiter!r}: {exc}"
            ) from exc

    def _longer_row(self) -> str:
        """Which line has more fields than the header, said plainly."""
        with self.path.open(encoding=_reading_encoding(self.encoding), newline="") as handle:
            rows = csv.reader(handle, delimiter=self.delimiter or ",")
            header = len(next(rows, []))
            for number, row in enumerate(rows, start=2):
                if len(row) > header:
                    return (
                        f"line {number} has {len(row)} fields but the header has {header} (delimiter "
                        f"{self.delimiter!r}); quote values that contain the delimiter, or pass the right --delimiter"
                    )
        return f"a row has more fields than the header's {header}"


def _reading_encoding(encoding: str) -> str:
    """utf-8 files often start with a byte-order mark that is not part of the first header."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _encoding_problem(path: Path, encoding: str) -> str:
    """The first line that is not valid in the encoding, found by decoding the file block by block."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, offset = 1, 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line += block[: exc.start].count(b"\n")
                return (
                    f"{path}: line {line} is not valid {encoding} (byte {offset + exc.start}: "
                    f"{block[exc.start : exc.start + 1]!r}); pass --encoding with the file's encoding, for example "
                    "--encoding latin-1"
                )
            line += block.count(b"\n")
            offset += len(block)
    return f"{path}: not valid {encoding}; pass --encoding with the file's encoding, for example --encoding latin-1"


def open_table(path: Path, delimiter: str | None, encoding: str) -> TableSource:
    """A file ready to read: its kind, delimiter (sniffed when not given) and headers; one clear line when it
    cannot be read at all."""
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    if not path.is_file():
        raise LoadError(f"{path}: not a file; give the path of a CSV, TSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            headers = [str(n).strip() for n in pq.ParquetFile(path).schema_arrow.names]
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise LoadError(f"{path}: not a readable Parquet file: {exc}") from exc
        return TableSource(path, None, encoding, headers)
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise LoadError(
            f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1"
        ) from exc
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    try:
        text = codecs.getincrementaldecoder(_reading_encoding(encoding))().decode(head)
    except UnicodeDecodeError as exc:
        raise LoadError(_encoding_problem(path, encoding)) from exc
    if not text.strip():
        raise LoadError(f"{path}: the file is empty")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return TableSource(path, delimiter, encoding, [h.strip() for h in header])


def _loose(header: str) -> str:
    """A header as a person reads it: case, spaces, '_' and '-' do not matter."""
    return re.sub(r"[\s_\-]+", "", str(header)).casefold()


def map_columns(source: TableSource, wanted: dict[str, tuple[str, str]]) -> None:
    """Map the file's headers to the names we read; wanted: name -> (header, the traits-file line to add with
    {header} for the file's spelling). Missing headers are one error listing every fix."""
    problems = []
    for name, (header, fix) in wanted.items():
        if header in source.headers:
            source.renames[header] = name
            continue
        near = [c for c in source.headers if _loose(c) == _loose(header)]
        problems.append(
            f"{header!r} (the file has {near[0]!r}: {fix.format(header=near[0])})" if near else repr(header)
        )
    if not problems:
        return
    path, delimiter, headers = source.path, source.delimiter, source.headers
    if len(headers) == 1:
        seen = [d for d in (",", ";", "\t", "|") if d in str(headers[0]) and d != delimiter]
        if seen:
            raise LoadError(
                f"{path}: missing column(s) {', '.join(problems)}: the header looks delimited by {seen[0]!r}, "
                f"not {delimiter!r}: pass --delimiter {seen[0]!r}"
            )
    raise LoadError(
        f"{path}: missing column(s) {'; '.join(problems)}. The file has {', '.join(map(str, headers))} "
        f"(read with delimiter {delimiter!r}); a trait reads another header with `column:` in the traits file"
    )


def detect_decimal(frame: pd.DataFrame, columns: list[str], fallback: str = ".") -> str:
    """',' when most numbers that carry a mark are written with a decimal comma; whole numbers carry none, so
    a column of them keeps `fallback` (the other file's mark, for orders). Read from the file's first chunk."""
    present = [frame[c].astype(str).head(2000) for c in columns if c in frame]
    sample = pd.concat(present).str.strip() if present else pd.Series([], dtype=str)
    marked = sample[sample.str.contains(r"[.,]", regex=True)]
    if not len(marked):
        return fallback
    return "," if marked.str.match(COMMA_DECIMAL).mean() > 0.5 else "."
