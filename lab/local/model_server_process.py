"""The model server's process identity: one lab-owned process, known by its pid file.

It lives with the local processes (not with :mod:`lab.pipeline.serving`, which starts it)
because ``lab down`` stops it too, and the local lab never imports the pipeline.
"""

from __future__ import annotations

from lab.config import LabConfig
from lab.local.processes import OwnedProcess

MODEL_SERVER = "model-server"


def model_server_process(config: LabConfig) -> OwnedProcess:
    """The lab's model server process (pid file and log under ``$LAB_HOME``)."""
    return OwnedProcess(
        MODEL_SERVER, config.run_dir / f"{MODEL_SERVER}.pid", config.log_dir / f"{MODEL_SERVER}.log"
    )


def stop_model_server(config: LabConfig) -> bool:
    """Stop the lab's model server (only ours, by pid); True if one was running."""
    return model_server_process(config).stop(timeout=10.0)
