"""``Client.submit(env=...)`` and the stored submission context (no daemon started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercloud.sdk import Client
from intercloud.specs import SpecError
from intercloud.submission import InvalidEnv


@pytest.fixture()
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    home = tmp_path / "home"
    monkeypatch.setenv("INTERCLOUD_HOME", str(home))
    monkeypatch.setenv("INTERCLOUD_LOCAL_SITES", "local/local,cpus=8")
    monkeypatch.delenv("INTERCLOUD_DB_URL", raising=False)
    return Client(home, autostart=False)


def test_submit_stores_env_files_and_plan(client: Client, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "code").mkdir(parents=True)
    spec = proj / "job.yaml"
    spec.write_text(
        "kind: training\nname: j\nnum_nodes: 2\nresources: {cpus: 1+}\nrun: 'true'\n"
        "workdir: code\nfile_mounts: {data: job.yaml}\n"
    )
    with client:
        job = client.submit(spec, env={"TOKEN": "t0k3n"}).job_id
        context = client.store.get(job).submission
        assert context is not None
        assert context["env"] == {"TOKEN": "t0k3n"}
        assert context["files"] == {
            "workdir": str(proj / "code"),
            "file_mounts": [["data", str(spec)]],
        }
        assert context["spec_dir"] == str(proj)
        assert context["plan"]["nodes"] == 2 and context["nodes"] == 2
        status = client.status(job)
        assert status["env_names"] == ["TOKEN"] and "t0k3n" not in repr(status)
        assert status["planned"] is True and status["placement"]["planned"] is True


def test_skypilot_relative_sources_are_the_callers_as_in_skypilot(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sky launch tasks/train.yaml` with `workdir: .` syncs the folder it is run from, not
    tasks/; a native spec's relative sources stay relative to its own folder."""
    repo = tmp_path / "repo"
    (repo / "tasks").mkdir(parents=True)
    (repo / "data.csv").write_text("x")
    sky = repo / "tasks" / "train.yaml"
    sky.write_text("resources: {cpus: 1+}\nworkdir: .\nfile_mounts: {/d: data.csv}\nrun: 'true'\n")
    native = repo / "tasks" / "native.yaml"
    native.write_text("kind: batch\nname: n\nresources: {cpus: 1+}\nworkdir: .\nrun: 'true'\n")
    monkeypatch.chdir(repo)
    with client:
        context = client.store.get(client.submit(sky).job_id).submission
        assert context is not None
        assert context["files"] == {
            "workdir": str(repo),
            "file_mounts": [["/d", str(repo / "data.csv")]],
        }
        context = client.store.get(client.submit(native).job_id).submission
        assert context is not None and context["files"]["workdir"] == str(repo / "tasks")


@pytest.mark.parametrize(
    ("env", "error"),
    [({"1A": "x"}, InvalidEnv), ({"A": "x\0y"}, InvalidEnv), ({"A": "ok"}, SpecError)],
)
def test_bad_submissions_store_nothing(
    client: Client, tmp_path: Path, env: dict[str, str], error: type[Exception]
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "kind: batch\nname: b\nresources: {cpus: 1+}\nrun: 'true'\n"
        "file_mounts: {/data: s3://bucket/x}\n"
    )
    with client:
        with pytest.raises(error):
            client.submit(spec, env=env)
        assert client.jobs() == []


def test_a_gang_no_site_can_hold_never_names_this_machine_as_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With named local sites, the catalog's `local` row (this machine) is not a provider
    that "could" run the gang: the cheapest elsewhere is a cloud, with its price."""
    from intercloud.sdk import NotRunnable

    home = tmp_path / "home"
    monkeypatch.setenv("INTERCLOUD_LOCAL_SITES", "aws/us-east-1,cpus=8;gcp/us-central1,cpus=8")
    spec = tmp_path / "job.yaml"
    spec.write_text("kind: training\nname: g\nnum_nodes: 6\nresources: {cpus: 2+}\nrun: 'true'\n")
    with Client(home, autostart=False) as client:
        with pytest.raises(NotRunnable) as err:
            client.submit(spec)
        assert client.jobs() == []
    message = str(err.value)
    assert "aws/us-east-1 local-cpu: the gang needs 12 CPUs, it has 8 in all" in message
    cheapest = message.split("the cheapest that could is ", 1)[1]
    assert not cheapest.startswith("local ") and cheapest.split()[0] in ("azure", "oci")


@pytest.mark.parametrize(
    "text",
    [
        "kind: service\nname: s\nreplicas: {min: 1, max: 1}\nresources: {cpus: 1+}\nrun: 'true'\n",
        "name: s\nresources: {cpus: 1+}\nrun: 'true'\nservice: {readiness_probe: /}\n",
    ],
)
def test_a_service_is_refused_at_submission(client: Client, tmp_path: Path, text: str) -> None:
    """The control loop runs training and batch jobs only: a service was stored, then
    failed at once ("services are not run by the job control loop")."""
    from intercloud.sdk import NotRunnable

    spec = tmp_path / "svc.yaml"
    spec.write_text(text)
    with client:
        with pytest.raises(NotRunnable, match="'s' is a service: the control loop runs"):
            client.submit(spec)
        assert client.jobs() == []
