"""Drives the local engine with RunPod's official Python SDK (`runpod`), every call the SDK offers
for a serverless endpoint, synchronous and asyncio: run, status, output, stream, cancel, run_sync,
health, purge_queue; and /retry, which RunPod's API has and the SDK does not wrap, through the SDK's
own client. Run by LocalEngineTests.RunPodSDKTests against a real engine on loopback:

    ENGINE_BASE=http://127.0.0.1:PORT/v2 ENDPOINT_ID=… API_KEY=… IMAGE=data:image/png;base64,… \
        .var/venv/bin/python Tests/Python/runpod_sdk_check.py

The engine must simulate about a second per job with one job at a time, so that a second job
waits in the queue. Prints one JSON line of what each call returned; exits 1 on the first
surprise, naming it."""

import asyncio
import json
import os
import signal
import sys
import time

import aiohttp
import runpod
from runpod.endpoint.asyncio.asyncio_runner import Endpoint as AsyncEndpoint

# Loopback only, and a whole run within two minutes (a hang is a failure, not a stuck test).
signal.alarm(120)
BASE = os.environ["ENGINE_BASE"]
if not (BASE.startswith("http://127.0.0.1:") or BASE.startswith("http://[::1]:")):
    print(json.dumps({"failed": f"ENGINE_BASE must be on loopback, got {BASE}"}), flush=True)
    sys.exit(1)
runpod.api_key = os.environ["API_KEY"]
runpod.endpoint_url_base = BASE
ENDPOINT = os.environ["ENDPOINT_ID"]
IMAGE = os.environ["IMAGE"]
report = {}


def check(condition, what):
    if not condition:
        print(json.dumps({"failed": what, "so_far": report}), flush=True)
        sys.exit(1)


def wait_for(job, states, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = job.status()
        if status in states:
            return status
        time.sleep(0.2)
    check(False, f"job {job.job_id} never reached {states}")


endpoint = runpod.Endpoint(ENDPOINT)

# health: RunPod's shape.
health = endpoint.health()
check(set(health["jobs"]) >= {"completed", "failed", "inProgress", "inQueue", "retried"}, f"health jobs: {health}")
check(set(health["workers"]) >= {"idle", "running"}, f"health workers: {health}")
report["health"] = health

# run_sync: the output at once.
output = endpoint.run_sync({"image": IMAGE}, timeout=60)
check(isinstance(output, dict) and output.get("image_url", "").startswith("http"), f"run_sync output: {output}")
report["run_sync"] = sorted(output)

# run, status, output.
job = endpoint.run({"image": IMAGE})
check(job.status() in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}, "run: a known status")
output = job.output(timeout=60)
check(job.status() == "COMPLETED" and output.get("image_url", "").startswith("http"), f"run output: {output}")
report["run"] = job.status()

# stream: the stages as they happen, then the end.
job = endpoint.run({"image": IMAGE})
chunks = list(job.stream())
check(len(chunks) >= 1, "stream gave no chunk")
check(wait_for(job, {"COMPLETED"}) == "COMPLETED", "streamed job completed")
report["stream"] = len(chunks)

# cancel: one job running, one waiting behind it; the waiting one is cancelled.
first = endpoint.run({"image": IMAGE})
wait_for(first, {"IN_PROGRESS"})
waiting = endpoint.run({"image": IMAGE})
cancelled = waiting.cancel()
check(cancelled.get("status") == "CANCELLED", f"cancel: {cancelled}")
check(waiting.status() == "CANCELLED", "a cancelled job stays cancelled")
report["cancel"] = cancelled["status"]

# purge_queue: what waits is removed, the running job is not.
queued = [endpoint.run({"image": IMAGE}) for _ in range(2)]
purged = endpoint.purge_queue()
check(purged.get("removed") == 2, f"purge_queue: {purged}")
check(wait_for(first, {"COMPLETED"}) == "COMPLETED", "the running job survived the purge")
report["purge_queue"] = purged

# retry (RunPod's /retry, through the SDK's client): a FAILED job goes back into the queue.
bad = endpoint.run({"image": "data:image/png;base64,"})
check(wait_for(bad, {"FAILED"}) == "FAILED", "an empty image fails")
retried = endpoint.rp_client.post(f"{ENDPOINT}/retry/{bad.job_id}", data=None)
check(retried.get("id") == bad.job_id and retried.get("status") == "IN_QUEUE", f"retry: {retried}")
bad.job_status = None
check(wait_for(bad, {"FAILED"}) == "FAILED", "the retried job ran again")
report["retry"] = retried["status"]


async def asynchronous():
    async with aiohttp.ClientSession() as session:
        endpoint = AsyncEndpoint(ENDPOINT, session)
        health = await endpoint.health()
        check("jobs" in health, f"async health: {health}")
        job = await endpoint.run({"image": IMAGE})
        output = await job.output(timeout=60)
        check(await job.status() == "COMPLETED" and output.get("image_url", "").startswith("http"), f"async output: {output}")
        streamed = await endpoint.run({"image": IMAGE})
        chunks = [chunk async for chunk in streamed.stream()]
        check(len(chunks) >= 1, "async stream gave no chunk")
        running = await endpoint.run({"image": IMAGE})
        while (status := await running.status()) != "IN_PROGRESS":
            check(status == "IN_QUEUE", f"async: the running job went {status} before it was seen running")
            await asyncio.sleep(0.2)
        waiting = await endpoint.run({"image": IMAGE})
        cancelled = await waiting.cancel()
        check(cancelled.get("status") == "CANCELLED", f"async cancel: {cancelled}")
        await endpoint.run({"image": IMAGE})
        purged = await endpoint.purge_queue()
        check(purged.get("removed") == 1, f"async purge_queue: {purged}")
        await running.output(timeout=60)
        report["asyncio"] = ["health", "run", "status", "output", "stream", "cancel", "purge_queue"]


asyncio.run(asynchronous())
print(json.dumps({"ok": True, "calls": report}), flush=True)
