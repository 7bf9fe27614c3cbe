"""Checks docs/asyncapi.yaml, Cyclorama's broker contract, against the golden messages.

    .var/venv/bin/python Tests/Python/asyncapi_check.py <repo root> [--self-test]

Checks that the document is AsyncAPI 2.6.0, that every `$ref` and every channel operation's message
resolves, that every component schema is a valid Draft 7 schema, and that each golden file in
Tests/SharedTests/Golden/ is exactly the payload of the component message example of the same name
and validates against that message's payload schema (Draft 7). Every component message needs at least
one example, and every example must be a golden file; each example's `type` must be the `type` const
of its payload schema (and the AMQP binding's `messageType`).

The last line of stdout is one JSON object, read by a Swift test:

    {"ok": bool, "errors": [str], "messages": {Name: {"type", "required", "properties"}},
     "channels": [{"exchange", "routingKey", "messages"}]}

`required` and `properties` are the payload's top-level field names after resolving `$ref` and
`allOf` (the envelope included). A channel's exchange comes from its AMQP binding (`""`, the default
exchange, for an `is: queue` channel, whose routing key is the queue name); parameterised channels
keep their `{placeholders}`. Exits 1 when anything failed.

`--self-test` also runs the checks on broken copies of the document (a wrong example, a schema
requiring a field the golden file lacks, a wrong `type` const, a dangling `$ref`, a missing example)
and fails unless each one is reported.

Needs only PyYAML and jsonschema (with its `referencing` library)."""

import copy
import json
import pathlib
import sys

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.jsonschema import DRAFT7

BASE_URI = "urn:cyclorama:asyncapi"
DOC_PATH = "docs/asyncapi.yaml"
GOLDEN_DIR = "Tests/SharedTests/Golden"


# ---------------------------------------------------------------- helpers

class RefError(Exception):
    pass


def pointer_get(doc, ref):
    """The value a local `#/...` JSON pointer names in `doc`."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise RefError(f"unsupported $ref {ref!r} (only local #/... references)")
    node = doc
    path = ref[1:]
    if path == "":
        return node
    if not path.startswith("/"):
        raise RefError(f"unsupported $ref {ref!r}")
    for raw in path[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise RefError(f"$ref {ref!r} does not resolve (no {token!r})")
    return node


def resolve(doc, node, depth=0):
    """`node` with its `$ref` followed (repeatedly)."""
    while isinstance(node, dict) and "$ref" in node:
        if depth > 50:
            raise RefError("$ref cycle")
        node = pointer_get(doc, node["$ref"])
        depth += 1
    return node


def all_refs(node, path="#"):
    """Every `$ref` string in the document, with where it is. Examples are data, not schemas, and
    are skipped."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            elif key == "examples" and isinstance(value, list):
                continue  # example values (of messages and of schemas) are data
            else:
                yield from all_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from all_refs(value, f"{path}/{index}")


def strict_equal(a, b):
    """JSON equality that tells booleans from numbers (Python's True == 1 does not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def first_difference(a, b, path="$"):
    """Where two JSON values first differ, for the error text."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a:
                return f"{path}.{key}: missing in the example"
            if key not in b:
                return f"{path}.{key}: not in the golden file"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items in the example, {len(b)} in the golden file"
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{index}]")
            if found:
                return found
        return None
    if not strict_equal(a, b):
        return f"{path}: example has {json.dumps(a)[:80]}, golden file has {json.dumps(b)[:80]}"
    return None


def flatten(doc, schema, seen=None):
    """Top-level (required, properties, type consts) of a schema, through `$ref` and `allOf` only
    (conditional `if`/`then` and `anyOf`/`oneOf` branches do not make a field always required)."""
    seen = set() if seen is None else seen
    required, properties, consts = [], [], []
    if isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return required, properties, consts
        schema = resolve(doc, schema)
        seen = seen | {ref}
    if not isinstance(schema, dict):
        return required, properties, consts
    required += [r for r in schema.get("required", []) if isinstance(r, str)]
    props = schema.get("properties", {})
    if isinstance(props, dict):
        properties += list(props)
        type_schema = props.get("type")
        if isinstance(type_schema, dict) and "const" in type_schema:
            consts.append(type_schema["const"])
    for part in schema.get("allOf", []) or []:
        r, p, c = flatten(doc, part, seen)
        required += r
        properties += p
        consts += c
    return required, properties, consts


def unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


# ---------------------------------------------------------------- the checks

def check(doc, goldens):
    """All checks on a loaded document and {golden name: JSON}; returns (errors, report)."""
    errors = []
    report = {"messages": {}, "channels": []}

    if not isinstance(doc, dict):
        return ["the document is not a YAML mapping"], report
    if doc.get("asyncapi") != "2.6.0":
        errors.append(f"asyncapi must be \"2.6.0\"; got {doc.get('asyncapi')!r}")
    for key in ("info", "channels", "components"):
        if not isinstance(doc.get(key), dict):
            errors.append(f"{key}: missing or not a mapping")
    if errors:
        return errors, report

    # Every $ref resolves.
    for where, ref in all_refs(doc):
        try:
            pointer_get(doc, ref)
        except RefError as error:
            errors.append(f"{where}: {error}")

    components = doc["components"]
    schemas = components.get("schemas", {}) or {}
    messages = components.get("messages", {}) or {}
    if not messages:
        errors.append("components.messages: none")

    # Every component schema is a valid Draft 7 schema.
    for name, schema in schemas.items():
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as error:
            errors.append(f"components.schemas.{name}: not a valid Draft 7 schema: {error.message}")

    registry = Registry().with_resource(BASE_URI, DRAFT7.create_resource(doc))

    def validator_for(message_name):
        pointer = "/components/messages/" + message_name.replace("~", "~0").replace("/", "~1") + "/payload"
        return Draft7Validator({"$ref": f"{BASE_URI}#{pointer}"}, registry=registry)

    # Component messages: fields, payload, examples.
    examples_by_name = {}
    for name, raw in messages.items():
        where = f"components.messages.{name}"
        try:
            message = resolve(doc, raw)
        except RefError as error:
            errors.append(f"{where}: {error}")
            continue
        if not isinstance(message, dict):
            errors.append(f"{where}: not a mapping")
            continue
        if message.get("name") != name:
            errors.append(f"{where}.name must be {name!r}; got {message.get('name')!r}")
        for field in ("title", "summary", "contentType", "payload"):
            if field not in message:
                errors.append(f"{where}: no {field}")
        if message.get("contentType", "application/json") != "application/json":
            errors.append(f"{where}.contentType must be application/json")
        try:
            payload = resolve(doc, message.get("payload", {}))
            required, properties, consts = flatten(doc, message.get("payload", {}))
        except RefError as error:
            errors.append(f"{where}.payload: {error}")
            continue
        type_const = consts[-1] if consts else None
        if len(set(consts)) > 1:
            errors.append(f"{where}.payload: conflicting type consts {consts}")
        if type_const is None:
            errors.append(f"{where}.payload: no `type` const")
        if not isinstance(payload, dict):
            errors.append(f"{where}.payload: not a schema")
        report["messages"][name] = {
            "type": type_const,
            "required": sorted(unique(required)),
            "properties": sorted(unique(properties)),
        }
        try:
            amqp = resolve(doc, message.get("bindings", {})).get("amqp", {})
            amqp = resolve(doc, amqp)
        except (RefError, AttributeError):
            amqp = {}
        if amqp.get("messageType") != type_const:
            errors.append(f"{where}.bindings.amqp.messageType must be {type_const!r}; got {amqp.get('messageType')!r}")
        examples = message.get("examples")
        if not isinstance(examples, list) or not examples:
            errors.append(f"{where}: no examples")
            continue
        for index, example in enumerate(examples):
            example_where = f"{where}.examples[{index}]"
            if not isinstance(example, dict) or "payload" not in example:
                errors.append(f"{example_where}: no payload")
                continue
            example_name = example.get("name")
            if not isinstance(example_name, str):
                errors.append(f"{example_where}: no name")
                continue
            if example_name in examples_by_name:
                errors.append(f"{example_where}: example name {example_name!r} used twice")
            examples_by_name[example_name] = (name, example)
            if example_name not in goldens:
                errors.append(f"{example_where}: {example_name!r} is not a golden file ({GOLDEN_DIR}/{example_name}.json)")
            if example_name.split(".")[0] != name:
                errors.append(f"{example_where}: example {example_name!r} belongs to message {example_name.split('.')[0]!r}")
            example_type = example["payload"].get("type") if isinstance(example["payload"], dict) else None
            if example_type != type_const:
                errors.append(f"{example_where}: payload type {example_type!r} is not the schema's type const {type_const!r}")

    # Golden files: exactly one example each, equal to the file, valid against the payload schema.
    for golden_name, golden in sorted(goldens.items()):
        if golden_name not in examples_by_name:
            errors.append(f"{GOLDEN_DIR}/{golden_name}.json: no component message has an example named {golden_name!r}")
            continue
        message_name, example = examples_by_name[golden_name]
        if not strict_equal(example["payload"], golden):
            difference = first_difference(example["payload"], golden) or "differs"
            errors.append(f"components.messages.{message_name} example {golden_name!r} is not {golden_name}.json: {difference}")
        try:
            problems = sorted(validator_for(message_name).iter_errors(golden), key=lambda e: list(e.absolute_path))
        except Exception as error:  # an unresolvable reference inside the schema, a bad pattern, ...
            errors.append(f"{golden_name}.json: could not validate against {message_name}'s payload: {error}")
            continue
        for problem in problems:
            path = "/".join(str(p) for p in problem.absolute_path) or "(root)"
            errors.append(f"{golden_name}.json does not validate against {message_name}'s payload at {path}: {problem.message}")

    # Channels: bindings, operations, messages.
    used = set()
    for channel_name, raw_channel in doc["channels"].items():
        where = f"channels.{channel_name}"
        try:
            channel = resolve(doc, raw_channel)
            bindings = resolve(doc, channel.get("bindings", {}))
            amqp = resolve(doc, bindings.get("amqp", {}))
        except (RefError, AttributeError) as error:
            errors.append(f"{where}: {error}")
            continue
        kind = amqp.get("is", "routingKey")
        if kind == "queue":
            exchange = ""
            routing_key = (amqp.get("queue") or {}).get("name", channel_name)
        else:
            exchange = (amqp.get("exchange") or {}).get("name")
            if not isinstance(exchange, str):
                errors.append(f"{where}: bindings.amqp.exchange.name is missing")
                exchange = channel_name.split("/", 1)[0]
            prefix = exchange + "/"
            if not channel_name.startswith(prefix):
                errors.append(f"{where}: the channel name does not start with its exchange {prefix!r}")
            routing_key = channel_name[len(prefix):] if channel_name.startswith(prefix) else channel_name
        names = []
        operations = [op for op in ("publish", "subscribe") if op in channel]
        if not operations:
            errors.append(f"{where}: no publish or subscribe operation")
        for op in operations:
            try:
                operation = resolve(doc, channel[op])
                message = operation.get("message")
                if message is None:
                    errors.append(f"{where}.{op}: no message")
                    continue
                refs = message.get("oneOf") if isinstance(message, dict) and "oneOf" in message else [message]
                for item in refs:
                    resolved = resolve(doc, item)
                    if not isinstance(resolved, dict) or "payload" not in resolved:
                        errors.append(f"{where}.{op}: a message without payload")
                        continue
                    if isinstance(item, dict) and "$ref" in item:
                        ref = item["$ref"]
                        name = ref.rsplit("/", 1)[-1] if ref.startswith("#/components/messages/") else resolved.get("name")
                        used.add(name)
                    else:
                        name = resolved.get("name")
                    if not name:
                        errors.append(f"{where}.{op}: a message without name")
                        continue
                    names.append(name)
            except (RefError, AttributeError) as error:
                errors.append(f"{where}.{op}: {error}")
        report["channels"].append({"exchange": exchange, "routingKey": routing_key, "messages": unique(names)})
    for name in messages:
        if name not in used:
            errors.append(f"components.messages.{name}: used by no channel operation")

    return errors, report


def load_goldens(root):
    folder = root / GOLDEN_DIR
    goldens = {}
    for path in sorted(folder.glob("*.json")):
        goldens[path.name[: -len(".json")]] = json.loads(path.read_text(encoding="utf-8"))
    return goldens


def self_test(doc, goldens):
    """Each broken copy must be reported; returns the failures of the self-test."""
    failures = []

    def expect_failure(what, mutate, mention):
        broken_doc, broken_goldens = copy.deepcopy(doc), copy.deepcopy(goldens)
        mutate(broken_doc, broken_goldens)
        errors, _ = check(broken_doc, broken_goldens)
        if not any(mention in error for error in errors):
            failures.append(f"self-test: {what} was not reported (errors: {errors[:3]})")

    messages = lambda d: d["components"]["messages"]
    schemas = lambda d: d["components"]["schemas"]

    def wrong_example(d, g):
        messages(d)["MediaUpdated"]["examples"][0]["payload"]["width"] = 1024
    expect_failure("an example that differs from its golden file", wrong_example, "is not MediaUpdated.json")

    def boolean_for_number(d, g):
        messages(d)["DispatchGeneration"]["examples"][0]["payload"]["attempt"] = True
    expect_failure("true in place of 1", boolean_for_number, "is not DispatchGeneration.json")

    def extra_required(d, g):
        schemas(d)["GenerationSubmitted"]["allOf"][-1]["required"].append("notInTheGoldenFile")
    expect_failure("a schema requiring a field the golden file lacks", extra_required,
                   "'notInTheGoldenFile' is a required property")

    def wrong_const(d, g):
        schemas(d)["SettingsReply"]["allOf"][-1]["properties"]["type"]["const"] = "cyclorama.settings.answer"
    expect_failure("a wrong type const", wrong_const, "is not the schema's type const")

    def invalid_golden(d, g):
        g["RequestGeneration"]["options"]["shadowStyle"] = "spooky"
        messages(d)["RequestGeneration"]["examples"][0]["payload"]["options"]["shadowStyle"] = "spooky"
    expect_failure("a golden file outside the schema", invalid_golden, "does not validate against RequestGeneration")

    def dangling_ref(d, g):
        d["channels"]["cyclorama.events/media.updated"]["subscribe"]["message"]["$ref"] = "#/components/messages/Nope"
    expect_failure("a dangling $ref", dangling_ref, "does not resolve")

    def missing_example(d, g):
        messages(d)["SettingsRequest"]["examples"].pop()
    expect_failure("a golden file without example", missing_example, "SettingsRequest.update.json: no component message")

    def stray_example(d, g):
        messages(d)["SettingsReply"]["examples"].append({"name": "SettingsReply.extra", "payload": g["SettingsReply"]})
    expect_failure("an example that is no golden file", stray_example, "is not a golden file")

    def wrong_version(d, g):
        d["asyncapi"] = "3.0.0"
    expect_failure("another AsyncAPI version", wrong_version, "asyncapi must be")

    return failures


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        print(json.dumps({"ok": False, "errors": ["usage: asyncapi_check.py <repo root> [--self-test]"],
                          "messages": {}, "channels": []}))
        return 1
    root = pathlib.Path(args[0])
    errors, report = [], {"messages": {}, "channels": []}
    try:
        doc = yaml.safe_load((root / DOC_PATH).read_text(encoding="utf-8"))
        goldens = load_goldens(root)
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as error:
        doc, goldens = None, {}
        errors.append(f"could not load: {error}")
    if doc is not None:
        if not goldens:
            errors.append(f"no golden files in {GOLDEN_DIR}")
        found, report = check(doc, goldens)
        errors += found
        if "--self-test" in argv:
            errors += self_test(doc, goldens)
    for error in errors:
        print(error, file=sys.stderr)
    print(json.dumps({"ok": not errors, "errors": errors, **report}, ensure_ascii=False))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
