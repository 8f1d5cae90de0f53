#!/usr/bin/env python3
"""Record SkyPilot 0.14.1's own choice for every task of the parity corpus.

Runs SkyPilot's optimizer offline on the shared catalog subset, set up exactly as
../shared/peers/skypilot_optimize.py does (private HOME, catalog CSVs copied in, HTTP
blocked, clouds marked enabled without credentials), feeds each task of
tests/cli/skypilot_parity_corpus.yaml to ``sky.Task.from_yaml_config`` + the optimizer,
and writes tests/cli/skypilot_parity_recorded.json. Never a project dependency:

    python3 -m venv /work/wt/skyvenv && /work/wt/skyvenv/bin/pip install -q skypilot==0.14.1
    HOME=$(mktemp -d) SKYPILOT_DISABLE_USAGE_COLLECTION=1 \
      /work/wt/skyvenv/bin/python tools/skypilot_parity_record.py \
      --catalog-dir ../shared/data/skypilot-catalog-v8-subset
"""

import argparse
import json
import os
import pwd
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "tests", "cli")
parser = argparse.ArgumentParser()
parser.add_argument("--catalog-dir", required=True)
parser.add_argument("--clouds", default="aws,gcp,oci,lambda")
args = parser.parse_args()

home = os.path.expanduser("~")
assert home != pwd.getpwuid(os.getuid()).pw_dir, "run with HOME=$(mktemp -d)"
CAT = os.path.join(home, ".sky", "catalogs", "v8")
os.makedirs(os.path.join(CAT, "common"), exist_ok=True)
shutil.copyfile(
    os.path.join(args.catalog_dir, "common", "accelerators.csv"),
    os.path.join(CAT, "common", "accelerators.csv"),
)
for cloud in args.clouds.split(","):
    os.makedirs(os.path.join(CAT, cloud), exist_ok=True)
    shutil.copyfile(
        os.path.join(args.catalog_dir, cloud, "vms.csv"), os.path.join(CAT, cloud, "vms.csv")
    )

import requests  # noqa: E402


def _blocked(url, *a, **k):
    raise requests.exceptions.ConnectionError(f"offline: blocked {url}")


requests.get = _blocked
requests.Session.get = lambda self, url, *a, **k: _blocked(url)

import sky  # noqa: E402
from sky import check as sky_check  # noqa: E402
from sky import clouds as sky_clouds  # noqa: E402
from sky import optimizer as sky_optimizer  # noqa: E402

CLOUDS = {"aws": sky_clouds.AWS(), "gcp": sky_clouds.GCP(), "oci": sky_clouds.OCI(),
          "lambda": sky_clouds.Lambda()}  # fmt: skip
ENABLED = [CLOUDS[c] for c in args.clouds.split(",")]
sky_check.get_cached_enabled_clouds_or_refresh = lambda *a, **k: list(ENABLED)
for c in ENABLED:
    type(c).check_quota_available = classmethod(lambda cls, *a, **k: True)

with open(os.path.join(TESTS, "skypilot_parity_corpus.yaml")) as f:
    corpus = yaml.safe_load(f)
out = {}
for case in corpus:
    cfg = yaml.safe_load(case["task"])
    cfg.setdefault("run", "echo hi")
    try:
        with sky.Dag() as dag:
            task = sky.Task.from_yaml_config(cfg)
        sky_optimizer.Optimizer.optimize(dag, quiet=True)
        r = task.best_resources
        nodes = task.num_nodes
        out[case["label"]] = {
            "provider": str(r.cloud).lower(),
            "region": r.region,
            "zone": r.zone,
            "instance_type": r.instance_type,
            "spot": bool(r.use_spot),
            "nodes": nodes,
            "hourly_usd": round(r.get_cost(3600) * nodes, 4),
        }
    except Exception as e:  # recorded: SkyPilot found nothing or refused
        out[case["label"]] = {"error": f"{type(e).__name__}: {e}"[:300]}
    print(case["label"], out[case["label"]], file=sys.stderr)
with open(os.path.join(TESTS, "skypilot_parity_recorded.json"), "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
