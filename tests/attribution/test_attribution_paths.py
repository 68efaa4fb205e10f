"""Reading journey tables: aggregated paths, per-touch rows, and the compact form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from attribution_helpers import journey, paths_frame, touch_frame

from journeylens.attribution import PathTable, read_paths, read_touches
from journeylens.errors import SpecError, UnusableInputError


def test_read_paths_strips_whitespace_and_codes_sorted_channels():
    table = read_paths(paths_frame([("email >search>  display ", 2, 20, 1), (" search", 0, 0, 3)]))
    assert list(table.channels) == ["display", "email", "search"]
    assert table.path_strings() == ["email > search > display", "search"]
    assert list(table.offsets) == [0, 3, 4]
    assert list(table.conversions) == [2, 0]
    assert list(table.nulls) == [1, 3]


def test_read_paths_options_and_files(tmp_path):
    frame = pd.DataFrame({"p": ["a|b", "b"], "conv": [1, 2], "null": [0, 1]})
    table = read_paths(frame, sep="|", path_col="p", conv_col="conv", value_col=None, null_col="null")
    assert table.path_strings(" | ") == ["a | b", "b"]
    assert list(table.value) == [0, 0]
    frame.to_csv(tmp_path / "paths.csv", index=False)
    from_csv = read_paths(tmp_path / "paths.csv", sep="|", path_col="p", conv_col="conv", value_col=None,
                          null_col="null")  # fmt: skip
    assert from_csv.path_strings() == table.path_strings()
    with pytest.raises(UnusableInputError, match="no such file"):
        read_paths(tmp_path / "missing.parquet")
    with pytest.raises(UnusableInputError, match="unknown format"):
        read_paths(write_file(tmp_path / "paths.json", "[]"))


def write_file(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_paths_round_trips_to_frame():
    frame = paths_frame([("a > b > a", 1, 5.5, 2), ("c", 0, 0, 1)])
    assert read_paths(read_paths(frame).to_frame()).path_strings() == ["a > b > a", "c"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [("a > b", -1, 0, 0)],
            "paths row 0: column 'conversions': expected a finite non-negative number, got -1",
        ),
        ([("a", 1, 1, 0), ("", 0, 0, 1)], "paths row 1: column 'path': expected a non-empty path, got ''"),
        ([("a >  > b", 1, 1, 0)], "paths row 0: column 'path': expected non-empty channel names between '>'"),
        (
            [("a", 1, 1, 0), ("b", 0, 3, 1)],
            "paths row 1: column 'value': expected 0 on a row with 0 in 'conversions'",
        ),
        (
            [("a", 1, 1, float("nan"))],
            "paths row 0: column 'nulls': expected a finite non-negative number, got nan",
        ),
        (
            [("a", 1, 1, 0), ("b", 1, 1, -2), ("c", 1, 1, -1)],
            "row 1: column 'nulls'.* got -2 \\(1 more rows like it\\)",
        ),
    ],
)
def test_read_paths_errors_name_row_column_and_bound(rows, message):
    with pytest.raises(SpecError, match=message) as info:
        read_paths(paths_frame(rows))
    assert info.value.code == "invalid_paths"


def test_read_paths_missing_column_and_type():
    with pytest.raises(SpecError, match="has no column 'conversions'"):
        read_paths(pd.DataFrame({"path": ["a"]}))
    with pytest.raises(SpecError, match="expected strings of channels"):
        read_paths(pd.DataFrame({"path": [1], "conversions": [1], "value": [0], "nulls": [0]}))
    with pytest.raises(SpecError, match="sep must be a non-empty string"):
        read_paths(paths_frame([("a", 1, 1, 0)]), sep="")


def test_null_path_is_an_error():
    table = pa.table({"path": ["a", None], "conversions": [1, 1], "value": [1.0, 1.0], "nulls": [0, 0]})
    with pytest.raises(SpecError, match="paths row 1: column 'path'"):
        read_paths(table)


def test_unique_merges_equal_paths_and_collapse_merges_repeats():
    table = read_paths(
        paths_frame([("a > b", 1, 2, 0), ("b", 0, 0, 1), ("a > b", 2, 3, 4), ("a > a > b", 1, 1, 1)])
    )
    unique = table.unique()
    assert unique.path_strings() == ["a > b", "b", "a > a > b"]
    assert list(unique.conversions) == [3, 0, 1]
    assert list(unique.value) == [5, 0, 1]
    assert list(unique.nulls) == [4, 1, 1]
    collapsed = table.collapse_repeats().unique()
    assert collapsed.path_strings() == ["a > b", "b"]
    assert list(collapsed.conversions) == [4, 0]


def test_unique_tells_prefixes_apart():
    table = read_paths(
        paths_frame([("a", 1, 1, 0), ("a > a", 1, 1, 0), ("a > a > a", 1, 1, 0), ("a", 1, 1, 0)])
    )
    assert table.unique().path_strings() == ["a", "a > a", "a > a > a"]


def test_read_touches_orders_by_position_and_takes_journey_fields():
    frame = touch_frame(
        {
            "anna": journey([("ad", "2024-01-01"), ("email", "2024-01-02")], value=10),
            "ben": journey([("search", "2024-01-03")]),
        }
    ).sample(frac=1, random_state=3)
    table = read_touches(frame)
    assert list(table.journey_id) == list(dict.fromkeys(frame["journey_id"]))
    by_journey = dict(zip(table.journey_id, table.path_strings(), strict=True))
    assert by_journey == {"anna": "ad > email", "ben": "search"}
    anna = list(table.journey_id).index("anna")
    assert (table.conversions[anna], table.value[anna], table.nulls[anna]) == (1, 10, 0)
    # ages: anna's ad is one day before her last touch
    ages = dict(zip(table.channels[table.codes], table.age_seconds, strict=True))
    assert ages == {"ad": 86_400, "email": 0, "search": 0}


def test_read_touches_epoch_seconds_and_naive_times():
    base = {"journey_id": ["j", "j"], "position": [0, 1], "channel": ["a", "b"], "converted": [True, True],
            "value": [3.0, 3.0]}  # fmt: skip
    epoch = read_touches(pd.DataFrame({**base, "timestamp": [0, 3600]}))
    naive = read_touches(
        pd.DataFrame({**base, "timestamp": pd.to_datetime(["1970-01-01T00:00", "1970-01-01T01:00"])})
    )
    assert list(epoch.age_seconds) == [3600, 0]
    assert list(naive.age_seconds) == [3600, 0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"position": [0, 0]}, "expected distinct positions within a journey, got 0 twice in journey 'j'"),
        (
            {"converted": [True, False]},
            "column 'converted': expected one value per journey, got several in journey 'j'",
        ),
        ({"value": [3.0, 4.0]}, "column 'value': expected one value per journey"),
        (
            {"converted": ["yes", "yes"]},
            "journeys row 0: column 'converted': expected true or false, got 'yes'",
        ),
        ({"position": [0, 1.5]}, "journeys row 1: column 'position': expected a whole number, got 1.5"),
        ({"channel": ["a", None]}, "journeys row 1: column 'channel': expected a non-empty value"),
        (
            {"timestamp": ["monday", "tuesday"]},
            "column 'timestamp': expected tz-aware date-times or epoch seconds",
        ),
        ({"converted": [False, False]}, "column 'value': expected 0 on a journey that did not convert"),
    ],
)
def test_read_touches_errors(change, message):
    frame = pd.DataFrame(
        {"journey_id": ["j", "j"], "position": [0, 1], "channel": ["a", "b"], "timestamp": [0, 60],
         "converted": [True, True], "value": [3.0, 3.0], **change}
    )  # fmt: skip
    with pytest.raises(SpecError, match=message):
        read_touches(frame)


def test_read_touches_missing_columns():
    with pytest.raises(SpecError, match=r"missing \['converted', 'value'\]"):
        read_touches(pd.DataFrame({"journey_id": ["j"], "position": [0], "channel": ["a"]}))


def test_unknown_table_shape():
    from journeylens.attribution import Linear

    with pytest.raises(SpecError, match="expected per-touch rows .* or aggregated paths"):
        Linear().fit(pd.DataFrame({"x": [1]}))
    with pytest.raises(UnusableInputError, match="got list"):
        Linear().fit([("a", 1)])


def test_path_table_is_accepted_directly():
    from journeylens.attribution import LastTouch

    table = PathTable(
        channels=np.array(["a", "b"], dtype=object),
        offsets=np.array([0, 2, 3]),
        codes=np.array([0, 1, 1]),
        conversions=np.array([1.0, 2.0]),
        value=np.array([5.0, 6.0]),
        nulls=np.array([0.0, 0.0]),
    )
    assert LastTouch().fit(table).credits_["attributed_conversions"].tolist() == [0, 3]


def test_read_paths_in_pieces_and_chunks(monkeypatch):
    # the path column is split in slices (threads); results and error rows must not depend on the slicing
    from journeylens.attribution import paths as paths_module

    rows = [(f"c{i % 7} > c{(i * 3) % 5} >c{i % 2}", i % 3, float(i % 3), 1) for i in range(50)]
    whole = read_paths(paths_frame(rows))
    monkeypatch.setattr(paths_module, "_PIECE_ROWS", 4)
    frame = paths_frame(rows)
    chunked = pa.concat_tables(
        [pa.Table.from_pandas(frame.iloc[:13], preserve_index=False),
         pa.Table.from_pandas(frame.iloc[13:], preserve_index=False)]
    )  # fmt: skip
    assert chunked.column("path").num_chunks == 2
    table = read_paths(chunked)
    assert list(table.channels) == list(whole.channels)
    assert table.path_strings() == whole.path_strings()
    assert (table.codes == whole.codes).all()
    bad = frame.copy()
    bad.loc[37, "path"] = "c1 >  > c2"
    bad_chunked = pa.concat_tables(
        [pa.Table.from_pandas(bad.iloc[:13], preserve_index=False),
         pa.Table.from_pandas(bad.iloc[13:], preserve_index=False)]
    )  # fmt: skip
    with pytest.raises(SpecError, match="paths row 37: column 'path'"):
        read_paths(bad_chunked)


def test_hand_built_path_table_is_checked():
    from journeylens.attribution import LastTouch

    bad = PathTable(
        channels=np.array(["a"], dtype=object),
        offsets=np.array([0, 0, 2]),
        codes=np.array([0, 3]),
        conversions=np.array([1.0, -1.0]),
        value=np.array([1.0, 1.0]),
        nulls=np.array([0.0]),
    )
    with pytest.raises(
        SpecError, match="at least one touch.*codes must lie in 0..0.*conversions must be finite.*nulls"
    ):
        LastTouch().fit(bad)
