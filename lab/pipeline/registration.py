"""Registering a ModelKit version in the Kubeflow Model Registry, bounded and precise.

Shipped into the KFP register component as source (``additional_funcs``), like
:mod:`lab.pipeline.steps`: every function is self-contained (imports in its body, no
module-level names). Before the Model Registry client is used, one bounded request to the
REST API says exactly what answers at the URL: nothing (not reachable), another service
(404 on the API path), a failing server (5xx with its body), a server that wants a token or
refuses it, or one that does not answer in time. The client's own calls then run under the
same total deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def decide_version(
    policy: str,
    model_name: str,
    version: str,
    modelkit_uri: str,
    lookup: Callable[[str], tuple[Any, Any]],
    suffix: str,
) -> dict[str, Any]:
    """Decide what registering ``version`` means under a version policy.

    ``lookup(name)`` returns what the Model Registry client has for a version name: a
    ``(ModelVersion | None, ModelArtifact | None)`` pair.

    Policies: ``fail`` (the default) refuses an existing version and says which one;
    ``suffix`` registers ``<version>-<suffix>`` (then ``-2``, ``-3``... while taken);
    ``reuse`` leaves an existing version of the same ModelKit digest as it is.

    Returns:
        ``{"action": "register" | "reuse", "version": name, "version_id": id or None}``.

    Raises:
        ValueError: Unknown policy.
        RuntimeError: The version exists (fail), or exists for another digest (reuse).
    """
    import datetime

    if policy not in ("fail", "suffix", "reuse"):
        raise ValueError(f"unknown version policy {policy!r}; choose fail, suffix or reuse")

    def describe(existing: Any, artifact: Any) -> str:
        created = "an unknown time"
        millis = getattr(existing, "create_time_since_epoch", None)
        if millis:
            created = datetime.datetime.fromtimestamp(int(millis) / 1000, tz=datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        uri = getattr(artifact, "uri", None) or "no artifact"
        return f"id {existing.id}, URI {uri}, created {created}"

    existing, artifact = lookup(version)
    if existing is None:
        return {"action": "register", "version": version, "version_id": None}
    same_content = artifact is not None and getattr(artifact, "uri", None) == modelkit_uri
    if policy == "reuse" and same_content:
        return {"action": "reuse", "version": version, "version_id": existing.id}
    if policy == "suffix":
        candidate = f"{version}-{suffix}"
        attempt = 1
        while lookup(candidate)[0] is not None:
            attempt += 1
            candidate = f"{version}-{suffix}-{attempt}"
        return {"action": "register", "version": candidate, "version_id": None}
    if policy == "reuse":
        raise RuntimeError(
            f"Version {version} already exists for model {model_name} ({describe(existing, artifact)}) "
            f"with other content than {modelkit_uri}: reuse only keeps a version of the same digest; "
            "use --version-policy suffix or a new version"
        )
    raise RuntimeError(
        f"Version {version} already exists for model {model_name} ({describe(existing, artifact)}); "
        "register a new version, or use --version-policy suffix (new version name) or reuse "
        "(keep it when the digest is the same)"
    )


def check_model_registry(
    registry_url: str, token: str, connect_timeout: float, total_timeout: float
) -> tuple[str, int, str]:
    """One bounded ``GET`` of the REST API under ``registry_url``; raise what is wrong, precisely.

    Args:
        registry_url: ``http(s)://host[:port][/prefix]`` (a prefix is kept: a gateway path).
        token: Bearer token, or empty.
        connect_timeout: Seconds to establish the connection.
        total_timeout: Seconds for the whole answer.

    Returns:
        ``(server_address, port, api_url)``: what the client needs (the address keeps the
        prefix and an explicit port, so the client appends the API path after the prefix).

    Raises:
        ValueError: Not an ``http(s)://`` URL, or a query or fragment in it.
        RuntimeError: Not reachable, wrong service (404), server error (with its body), auth
            required or refused, or no answer within ``total_timeout`` seconds.
    """
    import urllib.parse

    import requests

    parsed = urllib.parse.urlparse(registry_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"Model Registry URL {registry_url!r} must look like http://host:port[/prefix]")
    if parsed.query or parsed.fragment or parsed.params:
        raise ValueError(
            f"Model Registry URL {registry_url!r} has a query or fragment; give http(s)://host:port[/prefix]"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    prefix = parsed.path.rstrip("/")
    address = f"{parsed.scheme}://{parsed.hostname}:{port}{prefix}"
    api = f"{address}/api/model_registry/v1alpha3"
    where = f"Model Registry at {registry_url}"
    if parsed.scheme == "https" and not token:
        raise RuntimeError(f"{where} uses https, which needs a token: set MR_AUTH_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    probe = f"{api}/registered_models?pageSize=1"
    try:
        response = requests.get(probe, headers=headers, timeout=(connect_timeout, total_timeout))
    except requests.exceptions.ConnectTimeout:
        raise RuntimeError(f"{where} is not reachable: no connection within {connect_timeout:g}s") from None
    except requests.exceptions.Timeout:
        raise RuntimeError(f"{where} timed out: no answer to GET {probe} within {total_timeout:g}s") from None
    except requests.RequestException as exc:
        reason = type(exc).__name__
        if "refused" in str(exc).lower():
            reason = "connection refused"
        raise RuntimeError(f"{where} is not reachable: {reason}") from None
    body = " ".join(response.text.split())[:300]
    if response.status_code == 404:
        hint = "" if prefix else " (behind a gateway, include its path prefix in the URL)"
        raise RuntimeError(
            f"{where} is not a Model Registry: GET {probe} answered 404{hint}; "
            "is the URL that of the Model Registry REST server (v1alpha3)?"
        )
    if response.status_code in (401, 403):
        what = "refused the token" if token else "requires a token, and none was given (MR_AUTH_TOKEN)"
        raise RuntimeError(f"{where} {what}: {response.status_code} {body}".rstrip())
    if response.status_code >= 500:
        raise RuntimeError(f"{where} failed with a server error: {response.status_code} {body}".rstrip())
    if response.status_code != 200 or "json" not in response.headers.get("Content-Type", ""):
        raise RuntimeError(
            f"{where} is not a Model Registry: GET {probe} answered {response.status_code} "
            f"{response.headers.get('Content-Type', 'without a content type')}"
        )
    return address, port, api


def register_modelkit(
    registry_url: str,
    model_name: str,
    version: str,
    modelkit_uri: str,
    author: str,
    description: str,
    model_format_name: str,
    model_format_version: str,
    policy: str,
    lineage: dict[str, str],
    metadata: dict[str, Any],
    token: str,
    suffix: str,
    connect_timeout: float = 3.0,
    total_timeout: float = 60.0,
) -> dict[str, Any]:
    """Register (or reuse) a ModelKit version in the Model Registry, within ``total_timeout``.

    Args:
        registry_url: ``http(s)://host:port[/prefix]`` of the Model Registry REST server.
        model_name: Registered model name.
        version: Requested version name (the policy may change it).
        modelkit_uri: ``kit://host:port/repo@sha256:...``: the version's artifact URI.
        author: Author and owner.
        description: Version description.
        model_format_name: E.g. ``sklearn``.
        model_format_version: E.g. ``1``.
        policy: ``fail``, ``suffix`` or ``reuse`` (see :func:`decide_version`).
        lineage: ``model_source_*`` fields (see ``lineage_from_env``).
        metadata: Version custom properties (str, int, float, bool values).
        token: Bearer token (``MR_AUTH_TOKEN``), or empty.
        suffix: Suffix for the ``suffix`` policy (e.g. the run id).
        connect_timeout: Seconds to connect (config ``registration_connect_timeout``).
        total_timeout: Seconds for the whole registration (config ``registration_timeout``).

    Returns:
        ``action``, ``model_id``, ``version_id``, ``version``, ``uri`` and ``model_registry_url``.

    Raises:
        RuntimeError: What is wrong with the Model Registry (see :func:`check_model_registry`),
            a registration that did not finish within ``total_timeout`` seconds, or the
            version policy's refusal.
    """
    import asyncio
    import logging
    import time
    import warnings

    deadline = time.monotonic() + total_timeout
    address, port, api = check_model_registry(registry_url, token, connect_timeout, total_timeout)
    from model_registry import ModelRegistry

    loop = asyncio.new_event_loop()

    def run_bounded(coroutine: Any) -> Any:
        # The client's own HTTP timeout is 300 s per request; the deadline bounds them all.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            coroutine.close()
            raise TimeoutError
        return loop.run_until_complete(asyncio.wait_for(coroutine, remaining))

    where = f"Model Registry at {registry_url}"
    try:
        with warnings.catch_warnings():
            # "User access token is missing": expected without auth, as locally.
            warnings.simplefilter("ignore", UserWarning)
            client = ModelRegistry(
                address,
                port,
                author=author,
                is_secure=address.startswith("https://"),
                user_token=token or None,
                # The client logs "port is not 80" for every http URL on another port.
                log_level=logging.ERROR,
                async_runner=run_bounded,
            )

        def lookup(name: str) -> tuple[Any, Any]:
            if client.get_registered_model(model_name) is None:
                return None, None
            found = client.get_model_version(model_name, name)
            return found, (client.get_model_artifact(model_name, name) if found is not None else None)

        decision = decide_version(policy, model_name, version, modelkit_uri, lookup, suffix)
        if decision["action"] == "register":
            client.register_model(
                model_name,
                modelkit_uri,
                model_format_name=model_format_name,
                model_format_version=model_format_version,
                version=decision["version"],
                author=author,
                owner=author,
                version_description=description,
                metadata=metadata,
                **lineage,
            )
        registered = client.get_registered_model(model_name)
        found = client.get_model_version(model_name, decision["version"])
    except TimeoutError:
        raise RuntimeError(
            f"{where} timed out: registration did not finish within {total_timeout:g}s"
        ) from None
    except Exception as exc:
        # The server went away or failed mid-registration (aiohttp / generated API errors);
        # the policy's own refusals and the client's StoreError pass through unchanged.
        if type(exc).__module__.split(".")[0] in ("aiohttp", "mr_openapi"):
            raise RuntimeError(f"{where} failed during registration: {type(exc).__name__}: {exc}") from None
        raise
    finally:
        loop.close()
    if registered is None or found is None:
        raise RuntimeError(f"{where} did not return {model_name} {decision['version']}")
    return {
        "action": decision["action"],
        "model_id": str(registered.id),
        "version_id": str(found.id),
        "version": decision["version"],
        "uri": modelkit_uri,
        "model_registry_url": f"{api}/model_versions/{found.id}",
    }
