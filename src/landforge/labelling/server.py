"""Push tasks to and pull annotations from a running Label Studio (``label push``/``pull``).

Uses the official ``label-studio-sdk`` (``pip install 'landforge[labelling]'``). The API
token is read from an environment variable (``LABEL_STUDIO_TOKEN``) or a file, never
from the command line (which shells and CI logs keep). Both kinds of token work: a
personal access token (a JWT refresh token; the SDK exchanges it for short-lived
access tokens) and a legacy token, where the organisation allows those.

``push`` creates the project (title + the export's ``config.xml``) or reuses the one
with that title, and imports the tasks with their predictions, skipping tasks whose
``parcel_id`` is already there, so pushing twice adds nothing. ``pull`` writes the
project's tasks with their annotations as Label Studio's JSON export does, with each
annotator named by e-mail, ready for ``label import``.

A server that does not answer within ``timeout`` seconds, or refuses the token, is
one :class:`~landforge.errors.InputError` naming the URL or the token's source.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from landforge.errors import InputError, OptionError
from landforge.labelling.options import ServerOptions
from landforge.labelling.tasks import load_tasks

__all__ = ["connect", "pull_annotations", "push_tasks", "read_token"]


def read_token(opts: ServerOptions) -> tuple[str, str]:
    """The API token and where it came from (``$VAR`` or the file)."""
    if opts.token_file is not None:
        p = Path(opts.token_file)
        if not p.is_file():
            raise OptionError("token_file", f"{p}: token file does not exist")
        token = p.read_text().strip()
        where = str(p)
    else:
        token = os.environ.get(opts.token_env, "").strip()
        where = f"${opts.token_env}"
    if not token:
        raise OptionError(
            "token_env" if opts.token_file is None else "token_file",
            f"no Label Studio API token in {where} (set it, or give a token file)",
        )
    return token, where


@contextlib.contextmanager
def _server_errors(opts: ServerOptions, where: str) -> Iterator[None]:
    """Turn connection and authentication failures into one InputError."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except (httpx.TimeoutException, httpx.ConnectError, httpx.RemoteProtocolError) as exc:
        raise InputError(
            opts.url,
            f"Label Studio did not answer within {opts.timeout:g} s "
            f"({type(exc).__name__}); is the server running at this URL?",
        ) from None
    except httpx.HTTPError as exc:
        raise InputError(opts.url, f"request to Label Studio failed: {exc}") from None
    except ApiError as exc:
        if exc.status_code in (401, 403):
            raise InputError(
                where, f"Label Studio at {opts.url} refused the token (HTTP {exc.status_code})"
            ) from None
        body = " ".join(str(exc.body).split())[:200]
        raise InputError(
            opts.url, f"Label Studio answered HTTP {exc.status_code}: {body}"
        ) from None


def connect(opts: ServerOptions | None = None, **overrides: Any) -> tuple[Any, str]:
    """A checked ``label_studio_sdk.LabelStudio`` client and where its token came from.

    The server is asked who the token belongs to at once, so a wrong URL or token fails
    here, within ``timeout`` seconds.
    """
    o = ServerOptions.build(opts, **overrides)
    try:
        with warnings.catch_warnings():  # the SDK's own pydantic deprecation warnings
            warnings.simplefilter("ignore")
            from label_studio_sdk import LabelStudio
    except ImportError:
        raise InputError(
            None, "label push/pull need label-studio-sdk: pip install 'landforge[labelling]'"
        ) from None
    token, where = read_token(o)
    with _server_errors(o, where):
        client = LabelStudio(base_url=o.url.rstrip("/"), api_key=token, timeout=o.timeout)
        client.users.whoami()
    return client, where


def _project(client: Any, title: str, config: str | None) -> Any:
    """The project titled ``title``; created with ``config`` when there is none."""
    for p in client.projects.list(title=title):
        if p.title == title:
            return p
    if config is None:
        raise InputError(title, "no Label Studio project with this title (push tasks first)")
    return client.projects.create(title=title, label_config=config)


def push_tasks(
    tasks_dir: str | os.PathLike[str], opts: ServerOptions | None = None, **overrides: Any
) -> dict[str, Any]:
    """Create or reuse the project and import the export's tasks (with predictions).

    Returns:
        ``{"project": id, "url": ..., "imported": n, "already_there": m}``.
    """
    o = ServerOptions.build(opts, **overrides)
    root = Path(tasks_dir)
    tasks = load_tasks(root)
    config_path = (root if root.is_dir() else root.parent) / "config.xml"
    if not config_path.is_file():
        raise InputError(config_path, "labelling config does not exist (from 'label export')")
    client, where = connect(o)
    with _server_errors(o, where):
        project = _project(client, o.project, config_path.read_text())
        there = {
            str((t.data or {}).get("parcel_id"))
            for t in client.tasks.list(project=project.id, fields="task_only")
        }
        new = [t for t in tasks if str(t["data"]["parcel_id"]) not in there]
        if new:
            client.projects.import_tasks(id=project.id, request=new)
    return {
        "project": int(project.id),
        "url": o.url,
        "imported": len(new),
        "already_there": len(tasks) - len(new),
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "dict"):
        return value.dict()
    return value


def pull_annotations(
    out: str | os.PathLike[str], opts: ServerOptions | None = None, **overrides: Any
) -> dict[str, Any]:
    """Write the project's tasks with their annotations (Label Studio JSON) to ``out``.

    Returns:
        ``{"project": id, "tasks": n, "annotations": m}``.
    """
    from landforge.io.atomic import atomic_path

    o = ServerOptions.build(opts, **overrides)
    client, where = connect(o)
    with _server_errors(o, where):
        project = _project(client, o.project, None)
        users = {int(u.id): (u.email or u.username or str(u.id)) for u in client.users.list()}
        items = []
        n_ann = 0
        for task in client.tasks.list(project=project.id, fields="all"):
            t = _plain(task)
            anns = []
            for a in t.get("annotations") or []:
                a = _plain(a)
                who = a.get("completed_by")
                if isinstance(who, dict):
                    who = who.get("email") or who.get("id")
                if isinstance(who, int):
                    who = users.get(who, str(who))
                anns.append(
                    {
                        "id": a.get("id"),
                        "completed_by": who,
                        "result": a.get("result") or [],
                        "was_cancelled": bool(a.get("was_cancelled")),
                    }
                )
            n_ann += len(anns)
            items.append(
                {
                    "id": t.get("id"),
                    "project": int(project.id),
                    "data": t.get("data") or {},
                    "annotations": anns,
                }
            )
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(items, indent=1))
    return {"project": int(project.id), "tasks": len(items), "annotations": n_ann}
