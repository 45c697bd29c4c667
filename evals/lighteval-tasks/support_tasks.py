"""LightEval 0.13 custom tasks for the Acme Outfitters support assistant.

Not an evalhub document: the `lighteval` Provider names this file in `files:` (and the data in
`dataset:`), so editing either re-runs the benchmark. The evalhub lighteval adapter passes this
file to LightEval as `--custom-tasks` and asks for the task as `returns_policy_short|0`.

The data lives next to this file in `returns_policy_short/test.jsonl`; LightEval loads a local
directory with `datasets.load_dataset(<dir>, "default")`, which names the split after the file.
"""

from pathlib import Path

from lighteval.metrics.metrics import Metrics
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc

DATA_DIR = Path(__file__).resolve().parent / "returns_policy_short"

INSTRUCTION = (
    "You are the Acme Outfitters support assistant. Answer with a short phrase, "
    "following the current (v2024) returns policy.\n\n"
)


def returns_policy_prompt(line: dict, task_name: str) -> Doc:
    """One question; every phrasing in `answers` is a gold answer (exact match takes the best).
    The query starts with the instruction, as lighteval's prompt manager expects: it takes the
    prefix off and puts the instruction back where the prompt format wants it."""
    answers = list(line["answers"])
    return Doc(
        task_name=task_name,
        query=f"{INSTRUCTION}Question: {line['question']}\nAnswer:",
        choices=[f" {a}" for a in answers],
        gold_index=list(range(len(answers))),
        instruction=INSTRUCTION,
    )


returns_policy_short = LightevalTaskConfig(
    name="returns_policy_short",
    prompt_function=returns_policy_prompt,
    hf_repo=str(DATA_DIR),
    hf_subset="default",
    hf_avail_splits=["test"],
    evaluation_splits=["test"],
    few_shots_split=None,
    few_shots_select=None,
    generation_size=32,
    stop_sequence=["\n"],
    metrics=[Metrics.exact_match],
    version=0,
)

TASKS_TABLE = [returns_policy_short]
