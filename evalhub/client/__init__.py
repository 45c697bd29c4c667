"""evalhub's own client of the control plane (`evalhub serve`, or EvalHub's server for the
routes both share): sync and async, typed by the same models the server answers with
(evalhub.core.api), so a field the server sends is never silently dropped.

    from evalhub.client import EvalhubClient
    with EvalhubClient("http://127.0.0.1:8080") as client:
        job = client.submit(JobRequest(name="nightly", evaluation="support-assistant-quality"))
        done = client.wait_for_completion(job.resource.id)

Only idempotent requests are retried (GET, DELETE: on a connection failure or a 502/503/504);
a submission is sent once, so a retry can never start a second job.
"""

from evalhub.client._clients import AsyncEvalhubClient, ClientError, EvalhubClient, exit_code

__all__ = ["AsyncEvalhubClient", "ClientError", "EvalhubClient", "exit_code"]
