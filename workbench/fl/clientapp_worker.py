"""A long-running ClientApp process for a SuperNode started with `--isolation process`.

In flwr 1.41 a `flwr-clientapp` process serves exactly one message and exits,
so the default SuperNode starts a fresh Python (≈2.5 s of imports) for every
message. This worker imports the workbench's ClientApp once and then serves
task after task over the SuperNode's Runtime API, with the same protocol
`flwr.supernode.runtime.run_clientapp` uses for one task: acquire a task
token, pull the task input and message, run the ClientApp, push the reply and
the task output (which persists the node's context state).

Run by the deployment runtime as `python -m workbench.fl.clientapp_worker
--runtime-api-address HOST:PORT --insecure --superexec-auth-secret-file FILE --parent-pid PID`.
The Runtime API is its own SuperNode's, on loopback, hence without TLS; with the
SuperNode's SuperExec secret (`--superexec-auth-secret-file` on both) no other
local process can acquire the site's tasks, which would hand it the global model
and let it answer as the site.
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from typing import Any

from flwr.app import Context, Error, Message
from flwr.common.constant import ErrorCode, SubStatus
from flwr.common.serde import context_from_proto
from flwr.proto.node_pb2 import Node  # pylint: disable=E0611
from flwr.proto.runtime_pb2 import AcquireTaskRequest, PullAppMessagesRequest, PullTaskInputRequest  # pylint: disable=E0611
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor, SuperExecAuthHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.task_identity import TaskIdentity
from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

from workbench.fl.client_app import app as client_app
from workbench.fl.errors import error_reason

ACQUIRE_TASK = "/flwr.proto.Runtime/AcquireTask"


def _client(address: str, component: str, token: str | None = None, secret: bytes | None = None) -> RuntimeHttpClient:
    interceptors: list[Any] = [RuntimeVersionHttpInterceptor(component_name=component)]
    if token:
        interceptors.append(RuntimeTokenHttpInterceptor(token))
    if secret:  # signs AcquireTask as Flower's SuperExec does
        interceptors.append(SuperExecAuthHttpInterceptor(master_secret=secret, protected_methods={ACQUIRE_TASK}))
    return RuntimeHttpClient.from_server_address(
        server_address=address, insecure=True, root_certificates=None, interceptors=interceptors, retry_invoker=make_simple_http_retry_invoker()
    )


def _pull_task(client: RuntimeHttpClient) -> tuple[Message, Context]:
    """The task's context and message; objects are pulled with a short back-off (they may still be arriving)."""
    task = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = task.task_id, task.run.run_id, task.context.node_id
    context = context_from_proto(task.context)
    pulled = client.PullMessages(PullAppMessagesRequest())
    if not pulled.messages_list:
        raise RuntimeError("the SuperNode handed out a task without a message")
    node, tree = Node(node_id=context.node_id), pulled.message_object_trees[0]
    message = pull_and_inflate_object_from_tree(
        tree,
        make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(client.ConfirmMessageReceived, node, context.run_id),
        return_type=Message,
        initial_backoff=0.01,
        backoff_cap=0.25,
    )
    message.metadata.__dict__["_message_id"] = tree.object_id
    return message, context


def serve_task(address: str, token: str) -> None:
    client = _client(address, "flwr-clientapp", token)
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    message = context = reply = None
    status, details = SubStatus.FAILED, "the task failed before the ClientApp ran"
    try:
        heartbeat.start()
        message, context = _pull_task(client)
        reply = client_app(message=message, context=context)
        status, details = SubStatus.COMPLETED, ""
    except Exception as error:  # the server must get an error reply, as from Flower's own ClientApp process
        details = error_reason(error)
        if message is not None:
            reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=details), reply_to=message)
    finally:
        if reply is not None and context is not None:
            push_message(client, reply, context)
        if heartbeat.is_running:
            heartbeat.stop()
        push_task_output(client, context, status, details)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--insecure", action="store_true", required=True, help="loopback to its own SuperNode only")
    parser.add_argument("--superexec-auth-secret-file", type=Path, help="the secret its SuperNode was started with")
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the SuperNode) exits")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    if args.parent_pid:
        from flwr.supercore.app_utils import start_parent_process_monitor

        start_parent_process_monitor(args.parent_pid)
    secret = args.superexec_auth_secret_file.read_bytes() if args.superexec_auth_secret_file else None
    acquirer = _client(args.runtime_api_address, "SuperExec", secret=secret)
    idle_since = time.monotonic()
    while True:
        acquired = acquirer.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP]))
        if acquired.HasField("task") and acquired.token:
            serve_task(args.runtime_api_address, acquired.token)
            idle_since = time.monotonic()
            continue
        idle = time.monotonic() - idle_since
        time.sleep(args.poll if idle < 10 else min(1.0, args.poll * 2 ** ((idle - 10) / 2)))


if __name__ == "__main__":
    main()
