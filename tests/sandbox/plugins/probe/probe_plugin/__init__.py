# ruff: noqa
"""A plugin that exercises the sandbox: echo, key-value storage, events, a slow route."""

from sdk import Response, on_event, panel, route

panel("probe", "Probe")  # its page: panels/probe/index.html


@route("/echo", methods=["GET", "POST"])
def echo(request):
    return {
        "method": request["method"],
        "query": request["query"],
        "body": request["body"],
        "role": request["principal"]["role"],
    }


@route("/kv/{key}", methods=["GET", "PUT"])
def kv(request):
    key = request["params"]["key"]
    if request["method"] == "PUT":
        api.kv.set(key, request["body"])
        return Response({"stored": key}, status=201)
    return {"key": key, "value": api.kv.get(key)}


@route("/seen")
def seen(request):
    return {"events": api.kv.get("seen", [])}


@route("/slow")
def slow(request):
    total = 0
    while True:
        total += 1


@on_event("tracker/events/projects/+")
def remember(event):
    seen = api.kv.get("seen", [])
    seen.append(event["type"])
    api.kv.set("seen", seen)
    api.events.publish("tracker/events/probe/seen", {"type": event["type"]}, event["subject_id"])


@route("/escape/{name}")
def escape(request):
    from probe_plugin import corpus

    return corpus.run(request["params"]["name"])
