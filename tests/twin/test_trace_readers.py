"""Trace readers: hand-written fixtures per format, bad files, and the real shared traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercloud.twin.traces import (
    TraceError,
    TraceJob,
    TraceReader,
    formats,
    get_reader,
    read_trace,
    register,
)
from intercloud.twin.traces.philly_gavel import PhillyGavelReader

FIX = Path(__file__).resolve().parent / "fixtures"


def test_registry_lists_formats() -> None:
    assert {"alibaba_openb", "philly_gavel", "tiresias"} <= set(formats())
    for name in formats():
        reader = get_reader(name)
        assert isinstance(reader, TraceReader)
        assert reader.name == name
    with pytest.raises(KeyError, match="unknown trace format 'nope'"):
        get_reader("nope")
    with pytest.raises(ValueError, match="already registered"):
        register(PhillyGavelReader())


def test_tiresias_fixture() -> None:
    jobs = list(read_trace(FIX / "tiresias_small.csv", "tiresias"))
    assert jobs[1] == TraceJob(
        submit_time=30.0,
        tenant="",
        gpus=8,
        gpu_type=None,
        duration=147.0,
        job_id="1",
        name="vgg11",
        total_steps=133,
    )
    assert [j.gpus for j in jobs] == [1, 8, 2]
    assert jobs[1].gpu_seconds == 8 * 147.0
    assert len(list(read_trace(FIX / "tiresias_small.csv", "tiresias", limit=2))) == 2


def test_openb_fixture() -> None:
    jobs = list(read_trace(FIX / "openb_small.csv", "alibaba_openb"))
    assert len(jobs) == 4
    a, b, c, d = jobs
    assert (a.gpus, a.gpu_share, a.duration, a.tenant, a.cpus) == (1, 1.0, 100.0, "LS", 12.0)
    assert (b.gpu_share, b.gpu_type, b.duration, b.status) == (
        0.46,
        "V100M16|V100M32",
        60.0,
        "Failed",
    )
    assert c.gpus == 8 and c.duration is None and c.gpu_seconds is None
    assert d.gpus == 0 and d.gpu_share == 0.0
    assert a.memory_gib == 16.0


def test_gavel_fixtures_both_layouts() -> None:
    msr = list(read_trace(FIX / "gavel_msr_small.trace", "philly_gavel"))
    assert [(j.gpus, j.submit_time, j.total_steps) for j in msr] == [(1, 0.0, 3948), (4, 12.5, 500)]
    assert all(j.duration is None for j in msr)
    assert msr[1].name == "LM (batch size 20)"
    phys = list(read_trace(FIX / "gavel_physical_small.trace", "philly_gavel"))
    assert [(j.gpus, j.submit_time, j.priority_weight) for j in phys] == [
        (2, 0.0, 1.0),
        (8, 60.0, 2.0),
    ]
    # With a throughput table the duration is steps / (rate x GPUs).
    timed = PhillyGavelReader({"LM (batch size 20)": 10.0})
    jobs = list(timed.read(FIX / "gavel_msr_small.trace"))
    assert jobs[0].duration is None
    assert jobs[1].duration == pytest.approx(500 / (10.0 * 4))


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("tiresias", "job_id,num_gpu,submit_time\n1,2,3\n",
         r"bad\.csv:1: missing column\(s\) duration"),
        ("tiresias", "job_id,num_gpu,submit_time,duration\n1,x,3,4\n",
         r"bad\.csv:2: column 'num_gpu': cannot read it as a whole number \(got 'x'\)"),
        ("tiresias", "job_id,num_gpu,submit_time,duration\n1,2,3,-4\n",
         r"bad\.csv:2: column 'duration': must be a finite number >= 0"),
        ("tiresias", "job_id,num_gpu,submit_time,duration\n1,2,3\n",
         r"bad\.csv:2: expected 4 fields, got 3"),
        ("tiresias", "", r"bad\.csv: empty file"),
        ("alibaba_openb",
         "name,num_gpu,gpu_milli,creation_time,deletion_time\np,1,1500,0,1\n",
         r"bad\.csv:2: column 'gpu_milli': must be <= 1000"),
        ("alibaba_openb",
         "name,num_gpu,gpu_milli,creation_time,deletion_time\np,1,1000,10,5\n",
         r"bad\.csv:2: column 'deletion_time': is before creation_time 10"),
        ("alibaba_openb",
         "name,num_gpu,gpu_milli,creation_time,deletion_time\np,1,1000,inf,5\n",
         r"bad\.csv:2: column 'creation_time': must be a finite number"),
        ("philly_gavel", "a\tb\tc\n", r"bad\.csv:1: expected 7 or 10 tab-separated fields, got 3"),
        ("philly_gavel", "M\tcmd\t-s\t1\t100\t0.0\tzero\n",
         r"bad\.csv:1: column 'scale_factor': cannot read it as a whole number \(got 'zero'\)"),
        ("philly_gavel", "M\tcmd\t-s\t1\t100\t0.0\t0\n",
         r"bad\.csv:1: column 'scale_factor': must be >= 1"),
        ("philly_gavel", "\tcmd\t-s\t1\t100\t0.0\t1\n",
         r"bad\.csv:1: column 'job_type': must not be empty"),
    ],
)  # fmt: skip
def test_bad_files_raise_one_line_errors(
    tmp_path: Path, fmt: str, content: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(TraceError, match=message) as info:
        list(read_trace(path, fmt))
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_and_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such trace file"):
        list(read_trace(tmp_path / "absent.csv", "tiresias"))
    with pytest.raises(ValueError, match="limit must be >= 0"):
        list(read_trace(FIX / "tiresias_small.csv", "tiresias", limit=-1))


# ---------------------------------------------------------------------- real traces
def test_real_tiresias_60_jobs(shared_data: Path) -> None:
    jobs = list(read_trace(shared_data / "traces/tiresias/60_job.csv", "tiresias"))
    assert len(jobs) == 60
    assert {j.gpus for j in jobs} == {1, 2, 4, 8}
    assert all(j.duration is not None and j.duration > 0 for j in jobs)
    assert [j.submit_time for j in jobs] == sorted(j.submit_time for j in jobs)


def test_real_openb_default(shared_data: Path) -> None:
    path = shared_data / "traces/alibaba_openb_v2023/openb_pod_list_default.csv"
    jobs = list(read_trace(path, "alibaba_openb"))
    assert len(jobs) == 8152
    assert {j.gpus for j in jobs} == {0, 1, 2, 4, 8}
    shared = [j for j in jobs if j.gpus == 1 and j.gpu_share < 1.0]
    assert len(shared) == 3078
    assert all(j.duration is not None and j.duration >= 0 for j in jobs)
    assert len(list(read_trace(path, "alibaba_openb", limit=10))) == 10


def test_real_gavel_msr_seed0(shared_data: Path) -> None:
    folder = shared_data / "traces/gavel/msr/seed=0"
    jobs = [j for f in sorted(folder.glob("*.trace")) for j in read_trace(f, "philly_gavel")]
    assert len(jobs) == 15_264
    assert {1, 2, 4, 8, 16, 32, 64} <= {j.gpus for j in jobs}
    assert all(j.total_steps is not None and j.total_steps > 0 for j in jobs)
    phys = list(read_trace(shared_data / "traces/gavel/physical_cluster/small_test.trace",
                           "philly_gavel"))  # fmt: skip
    assert phys and all(j.gpus >= 1 for j in phys)
