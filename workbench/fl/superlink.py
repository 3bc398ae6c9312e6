"""The SuperLink side of a loopback federation: `python -m workbench.fl.superlink link|exec ARGS`.

`link --allowed-keys FILE [--same-user-only] FLOWER-SUPERLINK-ARGS` runs
Flower's SuperLink, whose Control API registers only the SuperNode keys in FILE.
Flower 1.41's Control API has no account authentication outside Flower
Enterprise, so with `--enable-supernode-auth` alone any local process could
still register a key of its own and then join as a hospital; the refusal is
logged like Flower's own ("Attempted to register SuperNode with public key: ...").
That open Control API would also let another local user start a run of their
own app, which the SuperExec would execute as this user: `--same-user-only`
(for a SuperLink on loopback, whose every legitimate client is this user's)
answers only connections whose socket belongs to this user (/proc/net/tcp).

`exec --token-dir DIR FLOWER-SUPEREXEC-ARGS` runs Flower's SuperExec, which
starts a `flwr-serverapp` process per run. Flower passes that process its task
token as `--token TOKEN`, visible to every local user in `ps`; here it goes into
a 0600 file in DIR (`--token-file`, which flwr-serverapp reads), and the process
gets a parent-death signal so it cannot outlive the SuperExec.

Pinned to flwr 1.41 (constraints.txt); tests/fl/test_deployment.py and
tests/fl/test_federation_security.py exercise both.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import threading
import types
from pathlib import Path
from typing import Any

from workbench.fl.lifetime import die_with_parent
from workbench.scratch import write_private

USER_REFUSAL = "[{path}][peer] Refused a request from {peer} by uid {uid}, not the federation's user"
REFUSAL = "Attempted to register SuperNode with public key: {key!r}, which is not one of this run's sites"


def allowed_public_keys(path: Path) -> frozenset[bytes]:
    """The sites' OpenSSH public keys (one a line) as Flower stores and compares them: SubjectPublicKeyInfo PEM."""
    from cryptography.hazmat.primitives import serialization

    keys = (serialization.load_ssh_public_key(line) for line in path.read_bytes().splitlines() if line.strip())
    return frozenset(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) for key in keys)


def register_only(allowed: frozenset[bytes]) -> None:
    """Make the Control API's RegisterNode refuse every key but the sites'."""
    from flwr.supercore.error import ApiErrorCode, FlowerError
    from flwr.superlink.servicer.control import control_handlers

    register = control_handlers.register_node

    def register_site(request: Any, account: Any, state: Any) -> Any:
        if request.public_key not in allowed:
            raise FlowerError(ApiErrorCode.NO_PERMISSIONS, REFUSAL.format(key=request.public_key))
        return register(request, account, state)

    control_handlers.register_node = register_site


def _proc_net_address(host: str, port: int) -> str:
    return f"{int.from_bytes(socket.inet_aton(host), sys.byteorder):08X}:{port:04X}"


def socket_owner(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid owning the client end of an established IPv4 TCP connection on this host, as /proc/net/tcp lists it."""
    local, remote = _proc_net_address(*client), _proc_net_address(*server)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote and fields[3] == "01":  # 01: ESTABLISHED
            return int(fields[7])
    return None


class SameUserOnly:
    """ASGI middleware that answers only requests from this user's processes, refusing (403) and logging the rest."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        client, server = (scope.get("client"), scope.get("server")) if scope["type"] == "http" else (None, None)
        uid = socket_owner(tuple(client), tuple(server)) if client and server else None
        if scope["type"] == "http" and uid != os.getuid():
            from logging import ERROR

            from flwr.supercore import log
            from starlette.responses import PlainTextResponse

            log(ERROR, USER_REFUSAL.format(path=scope.get("path"), peer=client, uid=uid))
            await PlainTextResponse("Refused: not a process of this federation's user.", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def same_user_only() -> None:
    """Put `SameUserOnly` first in the SuperLink's HTTP stack, through Flower's hook for extension middleware."""
    from flwr.superlink import extensions
    from starlette.middleware import Middleware

    extensions.get_middleware = lambda: (Middleware(SameUserOnly),)


def tokens_in_files(folder: Path) -> None:
    """Make the SuperExec start app processes with `--token-file` instead of `--token`, and tie them to its life."""
    from flwr.supercore.superexec.executor import subprocess_executor

    real = subprocess_executor.subprocess  # type: ignore[attr-defined]  # the module the executor imported: patched where it looks

    def popen(args: list[str], **kwargs: Any) -> Any:
        args, token_file = list(args), None
        if "--token" in args:
            at = args.index("--token")
            token_file = write_private(folder / f"{secrets.token_hex(8)}.token", args[at + 1].encode())
            args[at : at + 2] = ["--token-file", str(token_file)]
        process = real.Popen(args, preexec_fn=die_with_parent(), **kwargs)

        def reap() -> None:  # Flower never waits for these processes; the token's file goes with the process
            process.wait()
            if token_file is not None:
                token_file.unlink(missing_ok=True)

        threading.Thread(target=reap, daemon=True).start()
        return process

    subprocess_executor.subprocess = types.SimpleNamespace(Popen=popen, DEVNULL=real.DEVNULL)  # type: ignore[attr-defined,assignment]  # as above, by a stand-in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("component", choices=["link", "exec"])
    parser.add_argument("--allowed-keys", type=Path, help="link: the sites' OpenSSH public keys, one a line")
    parser.add_argument("--same-user-only", action="store_true", help="link: answer only this user's processes (loopback)")
    parser.add_argument("--token-dir", type=Path, help="exec: a private folder for app processes' task tokens")
    args, flower_args = parser.parse_known_args()
    if args.component == "link":
        if args.allowed_keys is None:
            parser.error("link needs --allowed-keys")
        register_only(allowed_public_keys(args.allowed_keys))
        if args.same_user_only:
            same_user_only()
        from flwr.superlink.cli import flower_superlink as run

        sys.argv = ["flower-superlink", *flower_args]
    else:
        if args.token_dir is None:
            parser.error("exec needs --token-dir")
        tokens_in_files(args.token_dir)
        from flwr.supercore.cli import flower_superexec as run

        sys.argv = ["flower-superexec", *flower_args]
    run()


if __name__ == "__main__":
    main()
