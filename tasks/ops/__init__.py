"""Operations: the local Prefect server other commands find, work pools, the GPU tag limit and
the deployments of infra/prefect.yaml. The values below are defined here once (the CLI's --help
quotes them)."""

from __future__ import annotations

UI_HOST = "127.0.0.1"
UI_PORT = 4200
SERVER_FILE = "server.json"  # <state dir>/prefect/server.json while `hoprec ui` runs
HEALTH_TIMEOUT_S = 0.3  # discovery: a server slower than this to answer /health is not used
SERVER_START_TIMEOUT_S = 180  # a fresh database migrates first: slow on 2 busy cores
POOLS = {"cpu": "cpu-pool", "gpu": "gpu-pool"}  # `hoprec worker --pool cpu|gpu`
POOL_TYPE = "process"
GPU_TAG = "gpu"
GPU_TAG_LIMIT = 1  # tasks tagged `gpu` at once: one card, one training
BACKFILL_DEPLOYMENT = "backfill/backfill"  # flow name / deployment name
