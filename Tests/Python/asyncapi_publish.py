"""Another system on Cyclorama's broker: publishes every example of docs/asyncapi.yaml with pika (an
AMQP client nobody here wrote) and checks the answer the contract documents (docs/messages.md).

    AMQP_URL=amqp://... GATEWAY_URL=http://127.0.0.1:... TOKEN=... MEDIA_ID=<uuid> \\
        .var/venv/bin/python Tests/Python/asyncapi_publish.py <repo root>

Run by AsyncAPITests against a whole running system. Each example is sent as the document says
(its channel's exchange and routing key, persistent, JSON), with fresh ids where the contract asks
for unique ones and MEDIA_ID for the media it names. What is checked, per message:

- RequestGeneration, published twice with one jobId and `replyTo` a queue of ours: exactly one
  terminal event there (GenerationCompleted with `mediaVersionId`), exactly one new version of the
  media; every event of the job on `cyclorama.events` validates against its documented schema.
- RequestGeneration with a field the schema refuses (`options.shadowStyle`): the schema refuses it,
  and so does Cyclorama: GenerationFailed `invalid_request` at `replyTo` naming the field, and a
  dead letter with the reason.
- SettingsRequest (a read, with AMQP reply_to): a SettingsReply there for our request (SettingsReply,
  which only Cyclorama publishes, is checked as received).
- SettingsRequest.update: not signed by the gateway, so refused: a SettingsReply with the refusal in
  `errors.authorization`, nothing changed, and a dead letter with the reason.
- DispatchGeneration and GenerationRendered for a job Cyclorama never accepted: dead-lettered with the
  reason; nothing runs, no version is made.
- Every event (GenerationSubmitted, GenerationProgressed, GenerationCompleted, GenerationFailed,
  MediaUpdated, SettingsChanged, BackendWebhookReceived): delivered on its channel, and a job nobody
  accepted stays unknown to the gateway (404), except GenerationFailed, which the gateway records as
  a FAILED job that can apply nothing (docs/messages.md, "Rejected messages").

The last line of stdout is one JSON object: {"ok": bool, "errors": [...], "checked": {example: what}}."""

import json
import os
import pathlib
import sys
import time
import urllib.error
import urllib.request
import uuid

import pika
import yaml
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asyncapi_check as contract  # noqa: E402

COMMANDS, EVENTS, DEAD_LETTER = "cyclorama.commands", "cyclorama.events", "cyclorama.dead-letter"
errors, checked = [], {}


def fail(what):
    errors.append(what)
    print("FAIL", what, file=sys.stderr, flush=True)


def fresh():
    return str(uuid.uuid4()).upper()


class Gateway:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def get(self, path):
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None

    def versions(self, media_id):
        status, body = self.get(f"/api/media/{media_id.lower()}/versions")
        if status != 200:
            raise RuntimeError(f"versions of {media_id}: {status}")
        return body["versions"] if isinstance(body, dict) else body

    def job_status(self, job_id):
        return self.get(f"/api/ai-image/status/{job_id.lower()}")


class Broker:
    """One blocking pika connection: our reply queue, a tap on every event, raw gets from queues."""

    def __init__(self, url):
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.replies = self.channel.queue_declare("", exclusive=True).method.queue
        self.tap = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.tap, EVENTS, routing_key="#")

    def publish(self, exchange, routing_key, body, reply_to=None, correlation_id=None):
        properties = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=body.get("messageId"),
            type=body.get("type"), reply_to=reply_to, correlation_id=correlation_id)
        self.channel.basic_publish(exchange, routing_key, json.dumps(body).encode(), properties, mandatory=False)

    def wait(self, queue, matches, timeout):
        """The first message on `queue` whose (properties, JSON body) `matches`, within `timeout`; others are dropped."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.1)
                continue
            try:
                message = json.loads(body)
            except ValueError:
                continue
            if matches(properties, message):
                return properties, message
        return None

    def drain(self, queue):
        """Every message waiting on `queue` now, as (properties, JSON)."""
        found = []
        while True:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            try:
                found.append((properties, json.loads(body)))
            except ValueError:
                pass

    def dead_letter(self, queue, message_id, timeout=30):
        """The dead letter of our message `message_id` from Cyclorama's `queue` (its `.dlq`), with the reason header."""
        found = self.wait(f"{queue}.dlq", lambda p, m: m.get("messageId") == message_id, timeout)
        if found is None:
            return None
        return (found[0].headers or {}).get("x-cyclorama-reason", "")


def main(argv):
    root = pathlib.Path(argv[1])
    env = os.environ
    doc = yaml.safe_load((root / contract.DOC_PATH).read_text(encoding="utf-8"))
    registry = Registry().with_resource(contract.BASE_URI, DRAFT7.create_resource(doc))

    def validator(name):
        return Draft7Validator({"$ref": f"{contract.BASE_URI}#/components/messages/{name}/payload"}, registry=registry)

    messages = doc["components"]["messages"]
    by_type = {}
    examples = {}
    for name, message in messages.items():
        message = contract.resolve(doc, message)
        for example in message.get("examples", []):
            examples[example["name"]] = (name, example["payload"])
            by_type[example["payload"]["type"]] = name
    # Where each message is published: its channel's exchange binding and routing key (as the document says).
    routes = {}
    for channel_name, channel in doc["channels"].items():
        bindings = contract.resolve(doc, channel.get("bindings") or {}) or {}
        amqp = contract.resolve(doc, bindings.get("amqp") or {}) or {}
        exchange = (contract.resolve(doc, amqp.get("exchange") or {}) or {}).get("name")
        if exchange not in (COMMANDS, EVENTS):
            continue
        key = channel_name.split("/", 1)[1]
        for operation in ("publish", "subscribe"):
            refs = (channel.get(operation) or {}).get("message")
            if refs is None:
                continue
            for ref in refs.get("oneOf", [refs]):
                routes[ref["$ref"].rsplit("/", 1)[1]] = (exchange, key)

    def conforms(name, body, what):
        problems = sorted(validator(name).iter_errors(body), key=lambda e: list(e.path))
        for problem in problems[:3]:
            fail(f"{what}: does not match the documented {name}: {'/'.join(map(str, problem.path))}: {problem.message}")
        return not problems

    gateway = Gateway(env["GATEWAY_URL"], env["TOKEN"])
    broker = Broker(env["AMQP_URL"])
    media_id = env["MEDIA_ID"].upper()

    def example(name):
        """A copy of the example with a fresh messageId, every URL in it pointed at the gateway (loopback)."""
        message_name, payload = examples[name]
        text = json.dumps(payload).replace("https://cyclorama.example.com", env["GATEWAY_URL"])
        body = json.loads(text)
        body["messageId"] = fresh()
        return message_name, body

    # ------------------------------------------------------------------ RequestGeneration
    name, request = example("RequestGeneration")
    job = fresh()
    request.update(jobId=job, correlationId=job, mediaId=media_id, replyTo={"exchange": "", "routingKey": broker.replies})
    conforms(name, request, "our RequestGeneration")
    versions_before = len(gateway.versions(media_id))
    exchange, key = routes[name]
    broker.publish(exchange, key, request)
    again = dict(request, messageId=fresh())
    broker.publish(exchange, key, again)
    terminal = broker.wait(broker.replies, lambda p, m: m.get("jobId") == job, 120)
    if terminal is None:
        fail("RequestGeneration: no terminal event at replyTo within 120 s")
    else:
        body = terminal[1]
        if body.get("type") != "cyclorama.generation.completed" or not body.get("mediaVersionId"):
            fail(f"RequestGeneration: the terminal event is not GenerationCompleted with mediaVersionId: {body}")
        conforms(by_type.get(body.get("type"), "GenerationCompleted"), body, "the terminal event at replyTo")
        # A second copy of the request must not end (or run) the job again.
        second = broker.wait(broker.replies, lambda p, m: m.get("jobId") == job, 5)
        if second is not None:
            fail(f"RequestGeneration published twice: a second terminal event {second[1].get('type')}")
        versions_after = len(gateway.versions(media_id))
        if versions_after != versions_before + 1:
            fail(f"RequestGeneration published twice: {versions_after - versions_before} new versions, not 1")
    seen_types = set()
    for _, event in broker.drain(broker.tap):
        if event.get("jobId") == job and event.get("type") in by_type:
            seen_types.add(event["type"])
            conforms(by_type[event["type"]], event, f"the job's {event['type']} on {EVENTS}")
    for wanted in ("cyclorama.generation.progressed", "cyclorama.generation.submitted", "cyclorama.generation.rendered",
                   "cyclorama.media.updated", "cyclorama.generation.completed"):
        if wanted not in seen_types:
            fail(f"RequestGeneration: no {wanted} for the job on {EVENTS} (saw {sorted(seen_types)})")
    checked["RequestGeneration"] = "one GenerationCompleted at replyTo and one new version for two copies; every event conforms"

    # ------------------------------------------------------------------ an invalid RequestGeneration
    name, invalid = example("RequestGeneration")
    job = fresh()
    invalid.update(jobId=job, correlationId=job, mediaId=media_id, replyTo={"exchange": "", "routingKey": broker.replies})
    invalid["options"] = dict(invalid.get("options") or {}, shadowStyle="spooky")
    if validator(name).is_valid(invalid):
        fail("the document accepts options.shadowStyle \"spooky\"")
    broker.publish(*routes[name], invalid)
    refusal = broker.wait(broker.replies, lambda p, m: m.get("jobId") == job, 30)
    if refusal is None or refusal[1].get("code") != "invalid_request" or "shadowStyle" not in refusal[1].get("reason", ""):
        fail(f"an invalid RequestGeneration: no GenerationFailed invalid_request naming shadowStyle at replyTo: {refusal and refusal[1]}")
    else:
        conforms("GenerationFailed", refusal[1], "the refusal at replyTo")
    reason = broker.dead_letter("prompt-service.generation-requests", invalid["messageId"])
    if not reason or "shadowStyle" not in reason:
        fail(f"an invalid RequestGeneration: dead letter with the reason missing ({reason!r})")
    checked["RequestGeneration (invalid)"] = "refused by the schema and by Cyclorama: GenerationFailed invalid_request at replyTo, dead-lettered"

    # ------------------------------------------------------------------ SettingsRequest (read)
    name, read = example("SettingsRequest")
    read["correlationId"] = read["messageId"]
    broker.publish(*routes[name], read, reply_to=broker.replies, correlation_id=read["correlationId"])
    reply = broker.wait(broker.replies, lambda p, m: m.get("requestMessageId", "").upper() == read["messageId"], 30)
    if reply is None:
        fail("SettingsRequest: no SettingsReply at reply_to")
    else:
        if conforms("SettingsReply", reply[1], "the SettingsReply"):
            # Cyclorama publishes SettingsReply, nobody else: its example is checked as received.
            checked["SettingsReply"] = "received for our SettingsRequest; conforms to the documented schema"
        if reply[1].get("errors") or not reply[1].get("settings"):
            fail(f"SettingsRequest: the reply has errors or no settings: {reply[1]}")
    checked["SettingsRequest"] = "a SettingsReply at reply_to"

    # ------------------------------------------------------------------ SettingsRequest.update (not the gateway's)
    name, update = example("SettingsRequest.update")
    update["correlationId"] = update["messageId"]
    _, settings_before = gateway.get("/api/ai-image/settings")
    broker.publish(*routes[name], update, reply_to=broker.replies, correlation_id=update["correlationId"])
    reply = broker.wait(broker.replies, lambda p, m: m.get("requestMessageId", "").upper() == update["messageId"], 30)
    if reply is None or "authorization" not in (reply[1].get("errors") or {}):
        fail(f"SettingsRequest.update from another system: no refusal in errors.authorization: {reply and reply[1]}")
    else:
        conforms("SettingsReply", reply[1], "the refusal")
    _, settings_after = gateway.get("/api/ai-image/settings")
    if settings_after != settings_before:
        fail("SettingsRequest.update from another system changed the settings")
    if not broker.dead_letter("settings-service.requests", update["messageId"]):
        fail("SettingsRequest.update from another system: no dead letter with the reason")
    checked["SettingsRequest.update"] = "refused (only the gateway may change settings): errors.authorization, nothing changed, dead-lettered"

    # ------------------------------------------------------------------ forged commands for jobs nobody accepted
    for example_name, queue in (("DispatchGeneration", "runpod-dispatcher.dispatch-requests"),
                                ("GenerationRendered", "result-ingestor.generation-rendered")):
        name, forged = example(example_name)
        job = fresh()
        forged.update(jobId=job, correlationId=job, mediaId=media_id)
        forged.pop("replyTo", None)
        versions_before = len(gateway.versions(media_id))
        broker.publish(*routes[name], forged)
        reason = broker.dead_letter(queue, forged["messageId"])
        if not reason or "no job" not in reason:
            fail(f"{example_name} for a job nobody accepted: not dead-lettered with the reason ({reason!r})")
        if len(gateway.versions(media_id)) != versions_before:
            fail(f"{example_name} for a job nobody accepted made a version")
        submitted = [m for _, m in broker.drain(broker.tap) if m.get("jobId") == job and m.get("type") != name]
        if any(m.get("type") == "cyclorama.generation.submitted" for m in submitted):
            fail(f"{example_name} for a job nobody accepted was submitted to a backend")
        checked[example_name] = "for a job nobody accepted: dead-lettered with the reason; nothing ran, no version"

    # ------------------------------------------------------------------ events
    for example_name in ("GenerationSubmitted", "GenerationProgressed", "GenerationProgressed.prompting", "GenerationCompleted",
                         "GenerationFailed", "MediaUpdated", "SettingsChanged", "BackendWebhookReceived"):
        name, event = example(example_name)
        job = fresh()
        if "jobId" in event:
            event.update(jobId=job, correlationId=job)
        if "mediaId" in event:
            event["mediaId"] = media_id
        event.pop("replyTo", None)
        exchange, key = routes[name]
        broker.publish(exchange, key, event)
        heard = broker.wait(broker.tap, lambda p, m: m.get("messageId") == event["messageId"], 20)
        if heard is None:
            fail(f"{example_name}: not delivered on {exchange} with routing key {key}")
        elif not conforms(name, heard[1], f"{example_name} as delivered"):
            pass
        if "jobId" in event:
            status, body = gateway.job_status(job)
            if name == "GenerationFailed":
                # Recorded, FAILED, so that a job that failed before its row existed is still known.
                deadline = time.monotonic() + 20
                while (status != 200 or (body or {}).get("status") != "FAILED") and time.monotonic() < deadline:
                    time.sleep(0.2)
                    status, body = gateway.job_status(job)
                if status != 200 or (body or {}).get("status") != "FAILED":
                    fail(f"GenerationFailed for an unknown job: the gateway says {status} {body}")
            elif status != 404:
                fail(f"{example_name} for a job nobody accepted: the gateway knows the job ({status} {body})")
        checked[example_name] = f"delivered on {exchange}/{key}; " + (
            "recorded as a FAILED job" if name == "GenerationFailed" else "no job made")

    missing = set(examples) - set(checked)
    if missing:
        fail(f"examples never published: {sorted(missing)}")
    broker.connection.close()
    print(json.dumps({"ok": not errors, "errors": errors, "checked": checked}))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
