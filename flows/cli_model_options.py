"""The options of the model subcommands (`baselines`, `train`, `compare`), built with the same
`opt` rules as the data stages' options in `cli_options`: dest is the flow parameter, and an
option left out is not passed, so the flow's own default applies.
"""

from __future__ import annotations

import argparse

from hoprec.flows.cli_options import csv, csv_ints, dataset_options, opt, source_options
from hoprec.tasks import defaults as D


def baselines_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
    opt(p, "--split", choices=("valid", "test"), default="test")
    opt(p, "--models", type=csv, default="popularity,markov,cooc-knn,sasrec", help="a list")
    opt(
        p,
        "--sasrec-steps",
        type=int,
        default=D.BASELINE_SASREC_STEPS,
        help="SASRec optimizer steps",
    )
    opt(p, "--seed", type=int, default=0)
    opt(
        p,
        "--history",
        type=int,
        default=D.HISTORY,
        help="input items behind the memorization groups",
    )
    opt(p, "--eval-users", type=int, default=0, help="a seeded sample of users (0 = all)")


def llm_options(p: argparse.ArgumentParser, steps: int) -> None:
    """What `train` and `compare` share: where the data is, the base model and the budget."""
    dataset_options(p)
    opt(p, "--build", dest="build_id", help="instruction build id (default: newest)")
    opt(
        p,
        "--base",
        default=D.BASE_MODEL,
        help="base LLM: asset name (embedded SmolLM2-135M-Instruct), local path or HF id",
    )
    opt(p, "--steps", type=int, default=steps, help="optimizer steps")
    opt(p, "--batch-size", type=int, default=D.BATCH_SIZE, help="samples a micro-batch")
    opt(p, "--grad-accum", type=int, default=D.GRAD_ACCUM, help="micro-batches a step")
    opt(p, "--lr", type=float, help="learning rate (default 1e-3 LoRA, 1e-4 full)")
    opt(
        p,
        "--align-steps",
        type=int,
        default=0,
        help="IIRG's stage 1 first: N steps training only the SID token rows on title -> SID "
        "samples of every item (0 = off)",
    )
    opt(
        p,
        "--pause-tokens",
        type=int,
        default=0,
        help="PauseRec: k learned <pause> tokens between the prompt and the answer (no loss on "
        "them; decoding runs after them)",
    )
    opt(
        p,
        "--no-system-prompt",
        dest="system_prompt",
        action="store_false",
        help="an empty system message instead of hoprec's (21 fewer tokens a sample on SmolLM2)",
    )
    opt(
        p,
        "--sid-init",
        choices=["mean", "spread"],
        default=D.SID_INIT,
        help="the new SID token rows at the start: mean (transformers': all alike, the LM "
        "undisturbed) or spread (drawn with the vocabulary's covariance: distinct from step 0)",
    )
    opt(p, "--device", default=D.DEVICE, help="auto (cuda, else mps, else cpu), cpu, cuda")


def selection_options(p: argparse.ArgumentParser) -> None:
    """LLM checkpoint selection on validation (train and compare)."""
    opt(
        p,
        "--select-every",
        type=int,
        default=0,
        help="validation NDCG@10 every N steps; the best weights are kept (0 = off: the last)",
    )
    opt(
        p,
        "--select-users",
        type=int,
        default=D.SELECT_USERS,
        help="validation users the selection is measured on",
    )
    opt(p, "--patience", type=int, default=0, help="stop after N checks without improvement")


def train_options(p: argparse.ArgumentParser) -> None:
    llm_options(p, D.TRAIN_STEPS)
    opt(p, "--full", dest="mode", action="store_const", const="full", help="full fine-tuning")
    opt(p, "--tasks", type=csv, help="instruction tasks, comma-separated (default: all)")
    opt(p, "--save-every", type=int, default=D.SAVE_EVERY, help="checkpoint every N steps")
    opt(p, "--log-every", type=int, default=D.LOG_EVERY, help="log loss and tokens/s every N steps")
    opt(p, "--seed", type=int, default=0)
    opt(
        p,
        "--devices",
        type=int,
        default=1,
        help="data-parallel processes (one a GPU; gloo on CPU): the same loss and data order "
        "as one device with the same global batch",
    )
    selection_options(p)
    objective_options(p)
    opt(
        p,
        "--temperature-grid",
        type=lambda text: [float(x) for x in csv(text)],
        help="SimGR: one run a temperature (comma-separated), the best on validation kept",
    )
    opt(p, "--force", action="store_true", help="retrain from scratch")


def objective_options(p: argparse.ArgumentParser) -> None:
    """The training objective (train and compare)."""
    opt(
        p,
        "--objective",
        choices=("generative", "simgr"),
        default=D.OBJECTIVE,
        help="generative: the SID tokens' LM loss; simgr: cosine softmax over all items "
        "(user = last hidden state, item = mean SID embedding), ranked exactly",
    )
    opt(p, "--temperature", type=float, default=D.SIMGR_TEMPERATURE, help="SimGR temperature")
    opt(
        p,
        "--simgr-positions",
        choices=("all", "prompt"),
        default=D.SIMGR_POSITIONS,
        help="SimGR history: all positions of each SID sequence in one pass, or the chat prompt",
    )
    opt(
        p,
        "--simgr-center",
        action="store_true",
        help="SimGR: centre the item vectors on the catalogue mean before the cosine (hoprec's "
        "option: new SID rows start alike, so raw item cosines barely differ)",
    )


def llm_variants(text: str) -> list[str]:
    """--llms: checked while parsing, so a typo fails before any training starts."""
    names = csv(text)
    unknown = [n for n in names if n not in D.LLM_VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown LLM variant(s) {unknown or [text]}; choose from {', '.join(D.LLM_VARIANTS)}"
        )
    return names


def compare_options(p: argparse.ArgumentParser) -> None:
    llm_options(p, D.COMPARE_STEPS)
    objective_options(p)
    opt(p, "--seeds", type=csv_ints, help="comma-separated seeds (default 0)")
    opt(
        p,
        "--llms",
        type=llm_variants,
        help="which fine-tunes, comma-separated: next-item (its task only), iirg (all the "
        "build's tasks) (default both)",
    )
    opt(
        p,
        "--eval-users",
        type=int,
        default=D.EVAL_USERS,
        help="test/valid users evaluated, a seeded sample (0 = all)",
    )
    opt(
        p,
        "--decode",
        choices=("beam", "exact"),
        default=D.DECODE,
        help="LLM ranking: constrained beam search or exact scoring",
    )
    opt(p, "--beams", dest="num_beams", type=int, default=D.NUM_BEAMS, help="beam width")
    opt(p, "--sasrec-steps", type=int, default=D.COMPARE_SASREC_STEPS, help="SASRec steps")
    opt(p, "--tiger-steps", type=int, default=D.TIGER_STEPS, help="SID transformer steps (0: none)")
    selection_options(p)
    opt(p, "--no-fusion", dest="fusion", action="store_false")
    opt(
        p,
        "--free-generation",
        action="store_true",
        help="add IIRG's own evaluation of the LLMs (unconstrained 20-beam generation, SIDs "
        "parsed, invalid-SID rate); on a CPU it costs several times the beam search",
    )
    opt(
        p,
        "--fusion-minmax",
        choices=("gap", "literal"),
        default="gap",
        help="fusion normalisation: listed items onto [1/m, 1] (unlisted 0), or MemGen's "
        "literal min-max (the last listed item ties the unlisted ones at 0)",
    )
    opt(
        p,
        "--full-relations",
        action="store_true",
        help="also train llm-iirg-full on the build as given (co-occurrence with validation "
        "events), reported on test next to the validation-clean llm-iirg",
    )


def retrain_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p, required=False)
    opt(p, "--landing", metavar="DIR", help="ingest this folder's files first (seen files skip)")
    opt(
        p,
        "--format",
        help="format of the landing files (alone: its embedded copy, e.g. ml-100k)",
    )
    source_options(p)
    opt(
        p,
        "--challenger",
        choices=("llm", "sasrec"),
        default=D.RETRAIN_CHALLENGER,
        help="what is trained: an LLM fine-tune or SASRec",
    )
    opt(
        p,
        "--margin",
        type=float,
        default=D.RETRAIN_MARGIN,
        help="validation NDCG@10 gain over the champion needed to promote",
    )
    opt(
        p,
        "--eval-users",
        type=int,
        default=D.RETRAIN_EVAL_USERS,
        help="validation users both models are judged on (0 = all)",
    )
    opt(p, "--base", default=D.BASE_MODEL, help="base LLM: asset name, local path or HF id")
    opt(p, "--steps", type=int, default=D.RETRAIN_STEPS, help="LoRA steps of an LLM challenger")
    opt(p, "--batch-size", type=int, default=D.BATCH_SIZE, help="samples a step")
    opt(
        p,
        "--sasrec-steps",
        type=int,
        default=D.COMPARE_SASREC_STEPS,
        help="optimizer steps of a SASRec challenger",
    )
    opt(p, "--history", type=int, default=D.DEMO_HISTORY, help="items in an LLM prompt")
    opt(p, "--titles", action="store_true", help="titles in LLM prompts (longer, slower)")
    opt(p, "--seed", type=int, default=0)
    opt(
        p,
        "--warm-start",
        action="store_true",
        help="start the LLM challenger from the champion's LoRA weights (same base and SID "
        "tokens; otherwise from scratch, said in the report)",
    )
    opt(p, "--k", type=int, default=D.RECOMMEND_K, help="length of the refreshed lists")
    opt(
        p,
        "--no-recommend",
        dest="recommend",
        action="store_false",
        help="do not refresh the champion's recommendations",
    )
    opt(p, "--device", default=D.DEVICE, help="auto (cuda, else mps, else cpu), cpu, cuda")


def recommend_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
    opt(
        p,
        "--model",
        default=D.RECOMMEND_MODEL,
        help="champion, a model id, or a baseline: popularity, markov, cooc-knn, sasrec "
        "(trained now if none is stored)",
    )
    opt(p, "--k", type=int, default=D.RECOMMEND_K, help="items a user")
    opt(p, "--users", default="all", help="all, or a file of user ids (one a line)")
    opt(p, "--decode", choices=("beam", "exact"), default=D.DECODE, help="LLM ranking")
    opt(p, "--beams", dest="num_beams", type=int, default=D.NUM_BEAMS, help="LLM beam width")
    opt(
        p,
        "--sasrec-steps",
        type=int,
        default=D.RECOMMEND_SASREC_STEPS,
        help="steps of a SASRec trained on the spot",
    )
    opt(p, "--device", default=D.DEVICE, help="auto (cuda, else mps, else cpu), cpu, cuda")
