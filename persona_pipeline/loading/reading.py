"""Reading a user's file in chunks: CSV/TSV (delimiter sniffed, encoding checked) or Parquet, with the file's
headers mapped to the names we read. A file larger than memory streams: nothing here holds more than one chunk.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from persona_pipeline.errors import LoadError

CHUNK_ROWS = 250_000  # rows typed and staged at a time: memory stays flat whatever the file's size
SNIFF_BYTES = 65_536


@dataclass
class TableSource:
    """One input file: its headers, and chunks of its rows as text (Parquet keeps its types), each chunk with
    a `line` column (the row's line in the file, 2 for the first row after the header)."""

    path: Path
    delimiter: str | None  # None for Parquet
    encoding: str
    headers: list[str]
    # the name we read -> the file's header; one header may feed several names (a signup date that is both
    # created_at and a date trait)
    columns: dict[str, str] = field(default_factory=dict)
    fields_checked: bool = False  # every row has the header's number of fields (checked on first read)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_parquet(self) -> bool:
        return self.delimiter is None

    def chunks(self, names: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The rows in chunks under our names (the mapped columns; `names` limits them, for a survey pass),
        with the file's `line`."""
        names = list(self.columns) if names is None else names
        headers = (
            list(dict.fromkeys(self.columns[n] for n in names)) or self.headers[:1]
        )  # [:1]: rows counted
        offset = 2
        for raw in self._raw_chunks(headers):
            raw.columns = [str(c).strip() for c in raw.columns]
            raw.index = pd.RangeIndex(len(raw))  # pandas numbers a later chunk's rows on from the first's
            chunk = pd.DataFrame({name: raw[self.columns[name]] for name in names}, index=raw.index)
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
        self._check_field_counts()
        try:
            reader = pd.read_csv(
                self.path,
                sep=self.delimiter,
                encoding=_reading_encoding(self.encoding),
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                index_col=False,  # a first row with an extra field must not become an index
                usecols=columns,
                chunksize=CHUNK_ROWS,
            )
            with reader:
                yield from reader
        except UnicodeDecodeError as exc:
            raise LoadError(_encoding_problem(self.path, self.encoding)) from exc
        except (pd.errors.ParserError, ValueError) as exc:
            raise LoadError(
                f"{self.path}: cannot parse as delimited text with delimiter {self.delimiter!r}: {exc}"
            ) from exc

    def _check_field_counts(self) -> None:
        """Refuse a file with a row of more or fewer fields than its header (once per file): pandas checks no
        row's length once usecols is given, so such a row (an unquoted decimal comma) loaded with its values
        under the wrong columns. Arrow's parser counts every row's fields in C++ and converts one column."""
        if self.fields_checked:
            return
        misaligned: list[object] = []

        def note(row: object) -> str:
            misaligned.append(row)
            return "skip"

        width = len(self.headers)
        names = [f"c{i}" for i in range(width)]
        try:
            pacsv.read_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    encoding=_reading_encoding(self.encoding),
                    column_names=names,
                    skip_rows=1,
                    block_size=1 << 24,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter or ",", newlines_in_values=True, invalid_row_handler=note
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=names[:1], column_types={names[0]: pa.string()}
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError):
            pass  # not a field-count problem: the pandas pass below says what it is
        if misaligned:
            raise LoadError(f"{self.path}: {self._misaligned_row()}; nothing was changed")
        self.fields_checked = True

    def _misaligned_row(self) -> str:
        """Which line has more or fewer fields than the header, said plainly."""
        with self.path.open(encoding=_reading_encoding(self.encoding), newline="") as handle:
            rows = csv.reader(handle, delimiter=self.delimiter or ",", skipinitialspace=True)
            header = len(next(rows, []))
            for number, row in enumerate(rows, start=2):
                if row and len(row) != header:
                    fix = (
                        "quote values that contain the delimiter, or pass the right --delimiter"
                        if len(row) > header
                        else "give every row a value (or an empty field) for every column"
                    )
                    return (
                        f"line {number} has {len(row)} fields but the header has {header} (delimiter "
                        f"{self.delimiter!r}); {fix}"
                    )
        return f"a row does not have the header's {header} fields"


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
            source.columns[name] = header
            continue
        near = [c for c in source.headers if _loose(c) == _loose(header)]
        if not near:  # a typo on either side: 'income' against 'incom', 'Income_USD' against 'income_usd2'
            close = difflib.get_close_matches(_loose(header), [_loose(c) for c in source.headers], 1, 0.7)
            near = [c for c in source.headers if close and _loose(c) == close[0]]
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
        f"{path}: missing column(s) {'; '.join(problems)}. The file has {', '.join(map(str, headers))}"
        + (f" (read with delimiter {delimiter!r})" if delimiter else "")
        + "; a trait reads another header with `column:` in the traits file"
    )


SINGLE_MARK = re.compile(r"^[-+]?(\d*)([.,])(\d+)$")
GROUPED = {  # thousands groups, with or without a decimal part after them: which mark is the decimal one
    ".": re.compile(r"^[-+]?\d{1,3}(,\d{3})+\.\d+$|^[-+]?\d{1,3}(,\d{3}){2,}$"),
    ",": re.compile(r"^[-+]?\d{1,3}(\.\d{3})+,\d+$|^[-+]?\d{1,3}(\.\d{3}){2,}$"),
}
# Once the decimal mark is known, the other mark reads only as thousands groups: '3,606' in a file of decimal
# points is 3606; '1.5' in a file of decimal commas fits no grouping and is not a number, not a guess.
THOUSANDS = {
    ".": re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$"),
    ",": re.compile(r"^[-+]?\d{1,3}(\.\d{3})+(,\d+)?$"),
}
SAMPLE_VALUES = 20_000


def _decimal_evidence(value: str) -> str | None:
    """'.' or ',' when the value can only be read one way, '?' when it reads either way ('3,606', '14.891': a
    thousands separator or a decimal mark), None when it carries no mark."""
    for mark, pattern in GROUPED.items():
        if pattern.match(value):
            return mark
    single = SINGLE_MARK.match(value)
    if not single:
        return None
    whole, mark, fraction = single.groups()
    if len(fraction) != 3 or not whole or len(whole) > 3 or whole.startswith("0"):
        return mark  # '12.5', '.5', '1234.567', '0,125': only a decimal mark reads these
    return "?"


def detect_decimal(frame: pd.DataFrame, columns: list[str], fallback: str = ".", file: str = "") -> str:
    """The file's decimal mark from the numbers that carry one (the first chunk): a value only one mark can
    read decides ('12,5', '1.234,5'); whole numbers say nothing, so a file of them keeps `fallback` (the contacts
    file's, for orders). Values that read either way and nothing to decide, or both marks decided, are refused:
    '3,606' could be 3606 or 3.606, and a guess would be wrong by a thousand times."""
    texts = [
        c for c in columns if c in frame and not pd.api.types.is_numeric_dtype(frame[c])
    ]  # Parquet: typed
    evidence: dict[str, str] = {}  # mark -> an example
    for column in texts:
        for value in pd.unique(frame[column].astype(str).str.strip().head(SAMPLE_VALUES)):
            mark = _decimal_evidence(value)
            if mark is not None and mark not in evidence:
                evidence[mark] = value
    decided = [m for m in (".", ",") if m in evidence]
    where = f"{file}: " if file else ""
    if len(decided) == 2:
        raise LoadError(
            f"{where}numbers are written with both decimal marks ({evidence['.']!r} and {evidence[',']!r}); "
            "pass --decimal . or --decimal , (values written the other way are then rejected)"
        )
    if decided:
        return decided[0]
    if "?" in evidence:
        raise LoadError(
            f"{where}the decimal mark cannot be told from the numbers: {evidence['?']!r} reads as a thousands "
            "separator or as a decimal mark, and no value settles it; pass --decimal . or --decimal ,"
        )
    return fallback
