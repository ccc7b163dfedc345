"""The Flow view: who was in which persona on which day, stored as intervals, and what moved between days.

A contact's persona can only change when its traits change, and traits are kept as SCD-2 versions
(valid_from, valid_to). So membership is stored per trait version: one row per version with the persona it
was assigned, valid over the same interval. A 1,000,000-contact set over 90 days costs one row per contact
plus one per change, not 90,000,000; a day's snapshot is every row whose interval covers that day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

OUTSIDE = -1  # "not in the set that day": joined before it, left after it


def day_end(day: dt.date) -> pd.Timestamp:
    """The instant a day's snapshot describes: its last moment, so changes made that day count."""
    return pd.Timestamp(day) + pd.Timedelta(days=1)


def covers(valid_from: pd.Series, valid_to: pd.Series, day: dt.date) -> np.ndarray:
    """Which intervals [valid_from, valid_to) hold at the end of `day` (valid_to missing: still open)."""
    end = day_end(day)
    start = pd.to_datetime(valid_from)
    stop = pd.to_datetime(valid_to)
    return ((start < end) & (stop.isna() | (stop >= end))).to_numpy()


def membership_on(history: pd.DataFrame, day: dt.date) -> pd.Series:
    """contact_id -> persona_id on a day, from interval rows (contact_id, persona_id, valid_from, valid_to)."""
    rows = history[covers(history["valid_from"], history["valid_to"], day)]
    return rows.drop_duplicates("contact_id", keep="last").set_index("contact_id")["persona_id"]


def daily_counts(history: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """Members of each persona on each day: (day, persona_id, members), days in order."""
    if not days:
        return pd.DataFrame(columns=["day", "persona_id", "members"])
    start = pd.to_datetime(history["valid_from"]).to_numpy()
    stop = pd.to_datetime(history["valid_to"]).to_numpy()
    ends = np.array([day_end(d).to_datetime64() for d in sorted(days)])
    out = []
    for persona in sorted(history["persona_id"].unique()):
        mine = (history["persona_id"] == persona).to_numpy()
        begun = np.sort(start[mine])
        closed = np.sort(stop[mine][~pd.isna(stop[mine])])
        # members at the end of a day: intervals begun before it, less those that ended before it
        counts = np.searchsorted(begun, ends, side="left") - np.searchsorted(closed, ends, side="left")
        out += [
            {"day": d, "persona_id": int(persona), "members": int(c)}
            for d, c in zip(sorted(days), counts, strict=True)
        ]
    return pd.DataFrame(out)


def transitions(history: pd.DataFrame, first: dt.date, second: dt.date) -> pd.DataFrame:
    """How many moved from persona A on `first` to persona B on `second`; OUTSIDE marks joined and left."""
    before = membership_on(history, first).rename("from_persona")
    after = membership_on(history, second).rename("to_persona")
    both = pd.concat([before, after], axis=1).fillna(OUTSIDE).astype("int64")
    table = both.groupby(["from_persona", "to_persona"]).size().rename("contacts").reset_index()
    return table[~((table["from_persona"] == OUTSIDE) & (table["to_persona"] == OUTSIDE))]


def transition_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """The from x to counts as a square table, with 'joined' and 'left' for contacts outside on one day."""
    matrix = table.pivot_table(
        index="from_persona", columns="to_persona", values="contacts", aggfunc="sum", fill_value=0
    )
    labels = {OUTSIDE: "outside"}
    return matrix.rename(index=labels, columns=labels)


@dataclass(frozen=True)
class SnapshotPlan:
    """What one day's snapshot writes, from the stored rows covering the day and the versions valid on it.

    assign: (contact_id, valid_from, valid_to, version_from) rows to assign with the current build;
    ends: (contact_id, valid_from, valid_to) stored rows whose end moves (keyed by the row's own valid_from);
    drop: (contact_id, valid_from) stored rows of an older build that an assigned row replaces outright;
    stale: (contact_id, valid_from, version_from) stored rows that no longer cover the day (their version closed,
    vanished in a replaced base, or the contact left the cohort): the caller finds when each ended.
    """

    assign: pd.DataFrame
    ends: pd.DataFrame
    drop: pd.DataFrame
    stale: pd.DataFrame


def plan_snapshot(
    stored: pd.DataFrame, current: pd.DataFrame, build: int, rebuilt_at: pd.Timestamp | None
) -> SnapshotPlan:
    """Match stored membership rows to the trait versions valid on a day, on (contact_id, version_from).

    stored: rows covering the day (contact_id, valid_from, valid_to, version_from, build); current: versions
    valid on it (contact_id, valid_from, valid_to). A version never stored is assigned from its start. A stored
    row of an older build, on a day that ends after the current build began serving (`rebuilt_at`), ends there
    and the rest of its version is assigned again: a day's snapshot describes the current model, as the
    set's memberships do. Call only for days that end after `rebuilt_at`, or with it None.
    """
    version = current.rename(columns={"valid_from": "version_from", "valid_to": "version_to"})
    merged = version.merge(stored, on=["contact_id", "version_from"], how="outer", indicator=True)
    fresh = merged[merged["_merge"] == "left_only"]
    assign = [
        pd.DataFrame(
            {
                "contact_id": fresh["contact_id"],
                "valid_from": fresh["version_from"],
                "valid_to": fresh["version_to"],
                "version_from": fresh["version_from"],
            }
        )
    ]
    both = merged[merged["_merge"] == "both"]
    older = both["build"].ne(build) if rebuilt_at is not None else pd.Series(False, index=both.index)
    redo = both[older]
    if len(redo):
        start = redo["valid_from"].where(redo["valid_from"] > rebuilt_at, rebuilt_at)
        assign.append(
            pd.DataFrame(
                {
                    "contact_id": redo["contact_id"],
                    "valid_from": start,
                    "valid_to": redo["version_to"],
                    "version_from": redo["version_from"],
                }
            )
        )
    kept = both[~older]
    # a row ends with its version, or earlier where a rebuild cut it: an end only ever closes or moves earlier
    # (reopening a cut row gave its contact two open rows, and a later day's snapshot failed on the key)
    moved = kept["version_to"].notna() & (kept["valid_to"].isna() | (kept["version_to"] < kept["valid_to"]))
    ends = kept[moved][["contact_id", "valid_from", "version_to"]].rename(columns={"version_to": "valid_to"})
    if len(redo):  # an older build's row ends where the current build began; one begun later is replaced
        cut = redo[redo["valid_from"] < rebuilt_at]
        ends = pd.concat(
            [ends, cut[["contact_id", "valid_from"]].assign(valid_to=rebuilt_at)], ignore_index=True
        )
    drop = redo[redo["valid_from"] >= rebuilt_at][["contact_id", "valid_from"]] if len(redo) else redo
    stale = merged[merged["_merge"] == "right_only"][["contact_id", "valid_from", "version_from"]]
    return SnapshotPlan(
        # one new row per contact and start, whatever stored rows led to it
        assign=pd.concat(assign, ignore_index=True).drop_duplicates(
            ["contact_id", "valid_from"], keep="last"
        ),
        ends=ends.reset_index(drop=True),
        drop=drop[["contact_id", "valid_from"]].reset_index(drop=True),
        stale=stale.reset_index(drop=True),
    )


def make_room(
    existing: pd.DataFrame, assign: pd.DataFrame, ends: pd.DataFrame, drop: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Further (ends, drop) so that no contact's membership intervals overlap once `assign` is written.

    A rewritten history (a --replace, a contact loaded again, a change dated before its version began) can start
    a version where stored rows of the contact already lie, even ones that do not cover the day. Those rows give
    way to the new one: a row starting inside it goes, a row running into it ends where it starts.

    existing: the assigned contacts' stored rows (contact_id, valid_from, valid_to) as read, before `ends` and
    `drop` (this snapshot's other changes) apply; assign: (contact_id, valid_from, valid_to, ...) new rows.
    """
    key = ["contact_id", "valid_from"]
    rows = existing[key + ["valid_to"]].merge(drop[key].assign(_gone=True), on=key, how="left")
    rows = rows[rows["_gone"].isna()].drop(columns="_gone")
    planned = ends[key + ["valid_to"]].drop_duplicates(key, keep="last").rename(columns={"valid_to": "_end"})
    rows = rows.merge(planned, on=key, how="left", indicator=True)
    moved = rows["_merge"] == "both"  # an end this snapshot sets: it, not the stored one
    rows["valid_to"] = rows["_end"].where(moved, rows["valid_to"])
    rows = rows.drop(columns=["_end", "_merge"])
    pairs = rows.merge(
        assign[key + ["valid_to"]].rename(columns={"valid_from": "new_from", "valid_to": "new_to"}),
        on="contact_id",
    )
    inside = (pairs["valid_from"] >= pairs["new_from"]) & (
        pairs["new_to"].isna() | (pairs["valid_from"] < pairs["new_to"])
    )
    into = (pairs["valid_from"] < pairs["new_from"]) & (
        pairs["valid_to"].isna() | (pairs["valid_to"] > pairs["new_from"])
    )
    more_drop = pairs[inside][key].drop_duplicates()
    more_ends = (
        pairs[into & ~inside][["contact_id", "valid_from", "new_from"]]
        .rename(columns={"new_from": "valid_to"})
        .sort_values("valid_to")
        .drop_duplicates(key, keep="first")
    )
    return more_ends.reset_index(drop=True), more_drop.reset_index(drop=True)


def trajectories(history: pd.DataFrame, days: list[dt.date]) -> list[tuple[list[tuple[int, int, int]], int]]:
    """Every distinct path through the snapshot days, with how many contacts took it.

    A path is a list of (persona_id, first day index, last day index) segments. Most contacts share a few
    paths (stayed in persona p; joined on day i; moved once), so this is a compact, exact way to give a
    report every from -> to matrix between any two snapshot days.
    """
    if history.empty or not days:
        return []
    ends = np.array([day_end(d).to_datetime64() for d in sorted(days)])
    start = pd.to_datetime(history["valid_from"]).to_numpy()
    stop = pd.to_datetime(history["valid_to"]).to_numpy()
    # snapshot days an interval covers: start < end(day) <= stop
    first = np.searchsorted(ends, start, side="right")
    last = np.where(pd.isna(stop), len(ends), np.searchsorted(ends, stop, side="right")) - 1
    rows = history.assign(first=first, last=last)
    rows = rows[rows["first"] <= rows["last"]].sort_values(["contact_id", "first"], kind="stable")
    # merge consecutive segments of the same persona (a trait change that kept the persona)
    segments = rows[["contact_id", "persona_id", "first", "last"]].to_numpy()
    paths: dict[tuple, int] = {}
    current: list[list[int]] = []
    owner = None
    for contact, persona, a, b in segments.tolist():
        if contact != owner:
            if current:
                key = tuple(tuple(s) for s in current)
                paths[key] = paths.get(key, 0) + 1
            current, owner = [], contact
        if current and current[-1][0] == persona and current[-1][2] + 1 >= a:
            current[-1][2] = max(current[-1][2], b)
        else:
            current.append([persona, a, b])
    if current:
        key = tuple(tuple(s) for s in current)
        paths[key] = paths.get(key, 0) + 1
    return sorted(((list(k), n) for k, n in paths.items()), key=lambda item: -item[1])


def transitions_from_trajectories(
    paths: list[tuple[list[tuple[int, int, int]], int]], a: int, b: int
) -> pd.DataFrame:
    """The from -> to table between day indexes a and b, from trajectories (what the report's script does)."""
    counts: dict[tuple[int, int], int] = {}
    for segments, n in paths:
        at_a = next((p for p, s, e in segments if s <= a <= e), OUTSIDE)
        at_b = next((p for p, s, e in segments if s <= b <= e), OUTSIDE)
        if at_a == OUTSIDE and at_b == OUTSIDE:
            continue
        counts[(at_a, at_b)] = counts.get((at_a, at_b), 0) + n
    table = pd.DataFrame(
        [{"from_persona": f, "to_persona": t, "contacts": n} for (f, t), n in counts.items()],
        columns=["from_persona", "to_persona", "contacts"],
    ).astype("int64")
    return table.sort_values(["from_persona", "to_persona"], ignore_index=True)
