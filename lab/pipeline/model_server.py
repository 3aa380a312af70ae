"""``python -m lab.pipeline.model_server``: the real KServe model server for one sklearn model.

A :class:`kserve.Model` subclass loads the ModelKit's joblib model and answers the V1
(``/v1/models/<name>:predict``) and V2 (``/v2/models/<name>/infer``) protocols. KServe's
``ModelServer`` binds 0.0.0.0 (hard-coded), so its ASGI application is served by uvicorn
on 127.0.0.1 instead: the lab never listens beyond loopback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle")


def find_model_file(model_dir: Path) -> Path:
    """The one model file in ``model_dir`` (the KServe sklearn runtime's rule: exactly one)."""
    candidates = sorted(p for p in model_dir.iterdir() if p.suffix in MODEL_SUFFIXES and p.is_file())
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise ValueError(
            f"{model_dir} must hold exactly one model file ({', '.join(MODEL_SUFFIXES)}); found: {found}"
        )
    return candidates[0]


def make_model(name: str, model_dir: Path) -> Any:
    """A loaded :class:`kserve.Model` serving the joblib model in ``model_dir``."""
    import joblib
    import kserve
    from kserve.utils.utils import get_predict_input, get_predict_response

    class JoblibModel(kserve.Model):  # type: ignore[misc]
        """A scikit-learn estimator or pipeline saved with joblib."""

        def __init__(self, name: str, model_file: Path) -> None:
            super().__init__(name)
            self.model_file = model_file
            self.estimator: Any = None

        def load(self) -> bool:
            """Read the model file; the server reports ready only after this."""
            self.estimator = joblib.load(self.model_file)
            self.ready = True
            return bool(self.ready)

        def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            """V1 ``{"instances": ...}`` or a V2 InferRequest in; the same protocol out."""
            instances = get_predict_input(payload)
            return get_predict_response(payload, self.estimator.predict(instances), self.name)

    model = JoblibModel(name, find_model_file(model_dir))
    model.load()
    return model


def build_application(model: Any, port: int) -> Any:
    """KServe's FastAPI application (V1, V2, health, metrics) with ``model`` registered."""
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    server = kserve.ModelServer(http_port=port, enable_grpc=False, workers=1)
    server.register_model(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port)
    rest.create_application()
    from kserve.model_server import app
    from timing_asgi import TimingMiddleware

    # KServe's timing middleware writes two trace lines per request (wall and CPU time) to the
    # log: the largest per-request cost after the model itself, and nothing the lab reads.
    app.user_middleware = [m for m in app.user_middleware if m.cls is not TimingMiddleware]
    return app


def wait_for_release(go_file: Path, timeout: float) -> bool:
    """Import what loading and serving need, say so, then wait until ``go_file`` appears (and take it).

    The imports are the start-up's cost (seconds); the model itself loads in milliseconds once
    it is there. ``<go_file>.waiting`` is written when they are done: its time is the standby's
    own start-up time, which ``lab demo`` reports beside the steps it overlapped.
    """
    import time

    import joblib  # noqa: F401
    import kserve  # noqa: F401
    import sklearn.linear_model  # noqa: F401  (what unpickling the chain's model imports)
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    from kserve.protocol.rest.server import RESTServer  # noqa: F401

    waiting = go_file.with_name(go_file.name + ".waiting")
    waiting.write_text(f"{time.time()}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if go_file.exists():
            go_file.unlink(missing_ok=True)
            return True
        time.sleep(0.01)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Serve one model on 127.0.0.1 until stopped."""
    parser = argparse.ArgumentParser(prog="python -m lab.pipeline.model_server", description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True, help="directory holding the model file")
    parser.add_argument("--model-name", required=True, help="name the model is served under")
    parser.add_argument("--port", type=int, required=True, help="loopback port")
    parser.add_argument(
        "--standby",
        type=Path,
        default=None,
        metavar="GO_FILE",
        help="import everything first, then wait until GO_FILE exists before loading the model "
        "(`lab demo` starts the server while the chain trains, pushes and registers)",
    )
    parser.add_argument(
        "--standby-timeout", type=float, default=900.0, help="seconds to wait for GO_FILE before exiting"
    )
    args = parser.parse_args(argv)
    # kserve parses sys.argv when it is imported; it must not see this program's arguments.
    sys.argv = sys.argv[:1]
    import uvicorn
    from fastapi.exceptions import FastAPIDeprecationWarning

    if args.standby is not None and not wait_for_release(args.standby, args.standby_timeout):
        print(f"standby: {args.standby} did not appear within {args.standby_timeout:.0f}s; exiting")
        return 0

    # KServe answers with FastAPI's deprecated ORJSONResponse. The warning is meant to show
    # once, but scikit-learn's input validation enters warnings.catch_warnings() on every
    # predict, which resets the once-registry: it was logged, with its stack walk, per request.
    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)
    app = build_application(make_model(args.model_name, args.model_dir), args.port)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
