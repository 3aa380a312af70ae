"""modelkit-dir-missing: the directory handed to the push step is absent or empty."""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result

MESSAGE = "modelkit directory does not exist"


def detect(evidence: Evidence) -> Result:
    """The recorded push error and the directory it names (context ``modelkit_dir``)."""
    error = evidence.chain_error()
    if error is None:
        return Result.ok("no chain error recorded")
    path = error.context.get("modelkit_dir", "")
    said_missing = MESSAGE in error.message.lower()
    if not path and not said_missing:
        return Result.ok(f"the recorded chain error ({error.step}) is not about the ModelKit directory")
    lines = [error.line()]
    remedy = [
        "# make the training step create modelkit_dir.path and write at least one file into it, e.g.:",
        "#   os.makedirs(modelkit_dir.path, exist_ok=True)",
        "#   joblib.dump(model, os.path.join(modelkit_dir.path, 'model.joblib'))",
    ]
    if not path:
        return Result.fail("the push step was handed a ModelKit directory that does not exist", lines, remedy)
    facts = evidence.directory(path)
    if not facts.exists:
        lines.append(f"{path} does not exist")
        return Result.fail(f"ModelKit directory {path} does not exist", lines, [*remedy, f"ls -la {path}"])
    if not facts.is_dir:
        lines.append(f"{path} is a file, not a directory")
        return Result.fail(f"ModelKit directory {path} is not a directory", lines, remedy)
    if facts.file_count == 0:
        lines.append(f"{path} exists but holds no file")
        return Result.fail(f"ModelKit directory {path} is empty", lines, [*remedy, f"ls -la {path}"])
    lines.append(f"{path} now holds {facts.file_count} file(s): {', '.join(facts.sample)}")
    if said_missing:
        return Result.warn(
            f"the push failed on a missing {path}, which has files now: re-run the chain", lines
        )
    return Result.ok(f"ModelKit directory {path} holds {facts.file_count} file(s)", lines)


CHECK = Check(
    id="modelkit-dir-missing",
    title="ModelKit directory has files",
    group="pipeline",
    inspects="the recorded push error and the directory it was handed",
    detect=detect,
)
