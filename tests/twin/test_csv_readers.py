"""The generic CSV and processed-Philly readers: fixtures, defaults, bad rows, streaming."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from intercloud.twin.traces import TraceError, TraceJob, formats, get_reader, read_trace
from intercloud.twin.traces.columns import TraceColumns, read_columns
from intercloud.twin.traces.philly import PhillyReader

FIX = Path(__file__).resolve().parent / "fixtures"


def test_registered_by_format_name() -> None:
    assert {"generic_csv", "philly"} <= set(formats())
    assert get_reader("generic_csv").name == "generic_csv"
    assert get_reader("philly").name == "philly"


def test_generic_fixture_every_column() -> None:
    jobs = list(read_trace(FIX / "generic_small.csv", "generic_csv"))
    assert len(jobs) == 4  # the blank line is skipped
    assert jobs[0] == TraceJob(
        submit_time=0.0,
        tenant="research",
        gpus=8,
        gpu_type="H100",
        duration=3600.0,
        job_id="pretrain-1",
        priority=10,
        spot_allowed=True,
    )
    # Empty optional cells take their defaults; job_id falls back to FILE:LINE.
    assert (jobs[1].gpu_type, jobs[1].job_id, jobs[1].spot_allowed) == (
        None,
        "generic_small:3",
        False,
    )
    assert (jobs[2].priority, jobs[2].spot_allowed, jobs[2].duration) == (-1, True, 7200.5)
    assert (jobs[3].gpus, jobs[3].tenant, jobs[3].priority) == (0, "", 0)
    assert jobs[2].gpu_seconds == 64 * 7200.5


def test_generic_minimal_columns_any_order_and_defaults() -> None:
    jobs = list(read_trace(FIX / "generic_minimal.csv", "generic_csv"))
    assert [(j.submit_time, j.gpus, j.duration) for j in jobs] == [(0.0, 4, 100.0), (5.0, 2, 50.0)]
    assert all(
        j.tenant == "" and j.gpu_type is None and j.priority == 0 and not j.spot_allowed
        for j in jobs
    )
    assert len(list(read_trace(FIX / "generic_minimal.csv", "generic_csv", limit=1))) == 1


def test_philly_fixture_clusters_are_tenants() -> None:
    jobs = list(read_trace(FIX / "philly_small.csv", "philly"))
    assert [(j.submit_time, j.tenant, j.gpus, j.duration) for j in jobs] == [
        (0.0, "vc-a", 1, 3600.0),
        (30.0, "vc-b", 8, 120.0),
        (4500.0, "vc-a", 16, 86400.0),
        (86400.0, "vc-c", 0, 0.0),
    ]
    assert jobs[0].job_id == "philly_small:2"
    cols = TraceColumns.from_jobs(jobs)
    assert cols.tenant_names == ("vc-a", "vc-b", "vc-c")
    assert cols.gpu_seconds == 3600 + 960 + 16 * 86400


def test_philly_explicit_origin_and_limit() -> None:
    reader = PhillyReader(origin=datetime(2017, 10, 3, 8, 0, 0))
    jobs = list(reader.read(FIX / "philly_small.csv", limit=2))
    assert [j.submit_time for j in jobs] == [3600.0, 3630.0]


H = "submit_time,duration,gpus"
P = "timestamp,duration,num_gpus,gpu_time,cluster"


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("generic_csv", "submit_time,gpus\n0,1\n", r"t\.csv:1: missing column\(s\) duration"),
        ("generic_csv", f"{H},spot_alowed\n0,1,1,true\n",
         r"t\.csv:1: unknown column\(s\) spot_alowed \(known: submit_time"),
        ("generic_csv", f"{H}\n0,10,1\n5,10,-2\n",
         r"t\.csv:3: column 'gpus': must be >= 0 \(got '-2'\)"),
        ("generic_csv", f"{H}\n0,-1,1\n",
         r"t\.csv:2: column 'duration': must be a finite number >= 0"),
        ("generic_csv", f"{H}\nx,1,1\n",
         r"t\.csv:2: column 'submit_time': cannot read it as a number"),
        ("generic_csv", f"{H}\n0,inf,1\n", r"t\.csv:2: column 'duration': must be a finite number"),
        ("generic_csv", f"{H}\n0,nan,1\n", r"t\.csv:2: column 'duration': must be a finite number"),
        ("generic_csv", f"{H}\n0,1,1.5\n",
         r"t\.csv:2: column 'gpus': cannot read it as a whole number"),
        ("generic_csv", f"{H},priority\n0,1,1,high\n",
         r"t\.csv:2: column 'priority': cannot read it as a whole number \(got 'high'\)"),
        ("generic_csv", f"{H},spot_allowed\n0,1,1,maybe\n",
         r"t\.csv:2: column 'spot_allowed': must be true or false \(got 'maybe'\)"),
        ("generic_csv", f"{H}\n0,1\n", r"t\.csv:2: expected 3 fields, got 2"),
        ("generic_csv", "", r"t\.csv: empty file"),
        ("generic_csv", f"{H},gpus\n0,1,1,2\n", r"t\.csv:1: duplicate column\(s\) gpus"),
        ("philly", "timestamp,duration,num_gpus,cluster\n",
         r"t\.csv:1: missing column\(s\) gpu_time"),
        ("philly", f"{P}\n2017-10-03T09:00:00,1,1,1,vc\n",
         r"t\.csv:2: column 'timestamp': must be YYYY-MM-DD HH:MM:SS"),
        ("philly", f"{P}\n2017-13-03 09:00:00,1,1,1,vc\n",
         r"t\.csv:2: column 'timestamp': must be a valid date and time"),
        ("philly", f"{P}\n2017-10-03 09:00:00,1,1,1,vc\n2017-10-03 08:00:00,1,1,1,vc\n",
         r"t\.csv:3: column 'timestamp': is before the trace's origin 2017-10-03 09:00:00"),
        ("philly", f"{P}\n2017-10-03 09:00:00,-5,1,1,vc\n",
         r"t\.csv:2: column 'duration': must be a finite number >= 0"),
        ("philly", f"{P}\n2017-10-03 09:00:00,5,two,1,vc\n",
         r"t\.csv:2: column 'num_gpus': cannot read it as a whole number"),
        ("philly", f"{P}\n2017-10-03 09:00:00,5,2,-1,vc\n",
         r"t\.csv:2: column 'gpu_time': must be a finite number >= 0"),
        ("philly", f"{P}\n2017-10-03 09:00:00,5,2,10, \n",
         r"t\.csv:2: column 'cluster': must not be empty"),
    ],
)  # fmt: skip
def test_bad_rows_name_line_and_column(
    tmp_path: Path, fmt: str, content: str, message: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(TraceError, match=message) as info:
        list(read_trace(path, fmt))
    assert "\n" not in str(info.value)


def test_whole_number_written_as_float_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{H},priority\n1e1,2.50,4.0,-3.0\n")
    (job,) = read_trace(path, "generic_csv")
    assert (job.submit_time, job.duration, job.gpus, job.priority) == (10.0, 2.5, 4, -3)


def test_readers_stream(tmp_path: Path) -> None:
    """A bad row far down the file is only met when reading gets there: rows before it
    come out first (the file is not parsed whole up front)."""
    path = tmp_path / "t.csv"
    path.write_text(H + "\n" + "0,1,1\n" * 1000 + "0,1,x\n")
    it = read_trace(path, "generic_csv")
    assert next(it).gpus == 1
    assert sum(1 for _ in read_trace(path, "generic_csv", limit=1000)) == 1000
    with pytest.raises(TraceError, match=r"t\.csv:1002: column 'gpus'"):
        list(it)


@pytest.mark.parametrize(
    ("fixture", "fmt"),
    [
        ("generic_small.csv", "generic_csv"),
        ("generic_minimal.csv", "generic_csv"),
        ("philly_small.csv", "philly"),
        ("tiresias_small.csv", "tiresias"),  # no fast path: from_jobs over read
    ],
)
def test_columns_fast_path_equals_jobs(fixture: str, fmt: str) -> None:
    fast = read_columns(FIX / fixture, fmt)
    slow = TraceColumns.from_jobs(read_trace(FIX / fixture, fmt))
    assert len(fast) == len(slow) > 0
    for name in ("submit_s", "duration_s", "gpus", "tenant", "gpu_type", "priority"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    assert np.array_equal(fast.spot_allowed, slow.spot_allowed)
    assert (fast.tenant_names, fast.gpu_type_names) == (slow.tenant_names, slow.gpu_type_names)
    assert len(read_columns(FIX / fixture, fmt, limit=1)) == 1


def test_columns_fast_path_reports_bad_rows_alike(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{H}\n0,1,1\n0,1,-1\n")
    with pytest.raises(TraceError, match=r"^t\.csv:3: column 'gpus': must be >= 0"):
        read_columns(path, "generic_csv")


@pytest.mark.parametrize(
    "stamp",
    ["2017-10-03 24:00:00", "2017-10-03 09:60:00", "2017-02-30 09:00:00", "2017-10-03 0９:00:00",
     "2017/10/03 09:00:00", "2017-10-03 09:00:0x"],
)  # fmt: skip
def test_philly_bad_timestamps(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{P}\n2017-10-03 08:00:00,1,1,1,vc\n{stamp},1,1,1,vc\n")
    with pytest.raises(TraceError, match=r"^t\.csv:3: column 'timestamp': must be"):
        read_columns(path, "philly")


def test_philly_seconds_across_days_and_years(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{P}\n2016-12-31 23:59:59,1,1,1,a\n2017-01-01 00:00:00,1,1,1,a\n"
                    "2017-03-01 00:00:01,1,1,1,a\n")  # fmt: skip
    jobs = list(read_trace(path, "philly"))
    assert [j.submit_time for j in jobs] == [0.0, 1.0, 1.0 + (31 + 28) * 86400 + 1]
