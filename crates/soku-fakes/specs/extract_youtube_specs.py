#!/usr/bin/env python3
"""Regenerates youtube-api-extract.json: the few names the YouTube fake (src/youtube.rs) and the
YouTube connector rely on, taken from Google's discovery document for the YouTube Data API v3,
so that tests/youtube.rs (and the connector's tests) can check requests and answers against them
without the document itself being copied into this repository.

Source: Google's discovery document, https://www.googleapis.com/discovery/v1/apis/youtube/v3/rest,
as mirrored daily by https://github.com/alchemy-run/gcp-spec (file specs/youtube-v3.json). Only
the methods, parameters and schema fields used are kept (names, types, formats, enums, required
flags), not the document's descriptions.

Usage (from the repository root, with a clone or bare mirror of alchemy-run/gcp-spec):
    python3 crates/soku-fakes/specs/extract_youtube_specs.py <gcp-spec-git-dir> [<commit>] \
        > crates/soku-fakes/specs/youtube-api-extract.json
or with the discovery document itself (fetched from the URL above):
    python3 crates/soku-fakes/specs/extract_youtube_specs.py --file youtube-v3.json

When the fake starts accepting a parameter or answering a field, or the connector starts sending
one, add its name to METHODS, GLOBAL_PARAMETERS or SCHEMAS below and run the script again. It
stops with an error when the document does not have the name: that is the drift the check exists
to catch, so fix the fake or the connector, not the list.
"""
import json
import subprocess
import sys

COMMIT = "2d5727f3ba8a0d59b62a031e771db53b02e3a5a1"
PATH = "specs/youtube-v3.json"

# method id -> parameters the fake accepts (and the connector may send).
METHODS = {
    "youtube.channels.list": ["part", "mine"],
    "youtube.videos.list": ["part", "id"],
    "youtube.videos.insert": ["part", "notifySubscribers"],
}

# The document's global parameters the fake accepts on every call (`uploadType` names the
# resumable protocol on videos.insert).
GLOBAL_PARAMETERS = ["uploadType"]

# schema -> fields the fake answers or takes. "Schema.field" names an object the document
# declares inline (a field with its own "properties").
SCHEMAS = {
    "ChannelListResponse": ["kind", "etag", "pageInfo", "items"],
    "Channel": ["kind", "etag", "id", "snippet", "contentDetails"],
    "ChannelSnippet": ["title", "description", "customUrl", "publishedAt"],
    "ChannelContentDetails": ["relatedPlaylists"],
    "ChannelContentDetails.relatedPlaylists": ["likes", "uploads"],
    "PageInfo": ["totalResults", "resultsPerPage"],
    "VideoListResponse": ["kind", "etag", "pageInfo", "items"],
    "Video": ["kind", "etag", "id", "snippet", "status", "processingDetails"],
    "VideoSnippet": ["publishedAt", "channelId", "title", "description", "tags", "categoryId",
                     "channelTitle"],
    "VideoStatus": ["uploadStatus", "failureReason", "rejectionReason", "privacyStatus",
                    "selfDeclaredMadeForKids", "madeForKids", "embeddable", "license",
                    "publicStatsViewable"],
    "VideoProcessingDetails": ["processingStatus", "processingProgress",
                               "processingFailureReason"],
    "VideoProcessingDetailsProcessingProgress": ["partsTotal", "partsProcessed", "timeLeftMs"],
}


def field_entry(prop, owner, name):
    out = {}
    if "$ref" in prop:
        out["ref"] = prop["$ref"]
    elif "properties" in prop:
        out["ref"] = f"{owner}.{name}"
    else:
        out["type"] = prop["type"]
    for k in ("format", "enum"):
        if k in prop:
            out[k] = prop[k]
    if "items" in prop:
        items = prop["items"]
        out["items"] = {"ref": items["$ref"]} if "$ref" in items else {"type": items["type"]}
    return out


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    if args[0] == "--file":
        text = open(args[1]).read()
        source = {"file": args[1]}
    else:
        git_dir = args[0]
        commit = args[1] if len(args) > 1 else COMMIT
        commit = subprocess.check_output(["git", "--git-dir", git_dir, "rev-parse", commit],
                                         text=True).strip()
        text = subprocess.check_output(["git", "--git-dir", git_dir, "show", f"{commit}:{PATH}"],
                                       text=True)
        source = {"repository": "https://github.com/alchemy-run/gcp-spec", "path": PATH,
                  "commit": commit}
    doc = json.loads(text)
    errors = []
    source.update({
        "discovery_url": "https://www.googleapis.com/discovery/v1/apis/youtube/v3/rest",
        "id": doc["id"],
        "revision": doc["revision"],
        "rootUrl": doc["rootUrl"],
        "servicePath": doc["servicePath"],
        "generated_by": "crates/soku-fakes/specs/extract_youtube_specs.py",
    })
    out = {"source": source, "global_parameters": {}, "methods": {}, "schemas": {}}

    for name in GLOBAL_PARAMETERS:
        p = doc["parameters"].get(name)
        if p is None:
            errors.append(f"no global parameter {name}")
            continue
        out["global_parameters"][name] = {"type": p["type"], "location": p["location"]}

    methods = {}
    for res in doc["resources"].values():
        for m in res.get("methods", {}).values():
            methods[m["id"]] = m
    for mid, wanted in METHODS.items():
        m = methods.get(mid)
        if m is None:
            errors.append(f"no method {mid}")
            continue
        entry = {"httpMethod": m["httpMethod"], "path": m["path"], "parameters": {}}
        for name in wanted:
            p = m["parameters"].get(name)
            if p is None:
                errors.append(f"{mid}: no parameter {name}")
                continue
            entry["parameters"][name] = {
                "type": p["type"], "location": p["location"],
                "required": bool(p.get("required", False)),
                "repeated": bool(p.get("repeated", False)),
            }
            if "enum" in p:
                entry["parameters"][name]["enum"] = p["enum"]
        # Every parameter the document requires, whether or not listed above.
        entry["required"] = sorted(n for n, p in m["parameters"].items() if p.get("required"))
        if "request" in m:
            entry["request"] = m["request"]["$ref"]
        if "response" in m:
            entry["response"] = m["response"]["$ref"]
        if "mediaUpload" in m:
            mu = m["mediaUpload"]
            entry["mediaUpload"] = {"accept": mu["accept"], "maxSize": mu.get("maxSize"),
                                    "protocols": mu["protocols"]}
        entry["scopes"] = m.get("scopes", [])
        out["methods"][mid] = entry

    for schema, fields in SCHEMAS.items():
        if "." in schema:
            owner, inline = schema.split(".", 1)
            props = doc["schemas"].get(owner, {}).get("properties", {}).get(inline, {}).get(
                "properties")
        else:
            props = doc["schemas"].get(schema, {}).get("properties")
        if props is None:
            errors.append(f"no schema {schema}")
            continue
        entry = {}
        for f in fields:
            if f not in props:
                errors.append(f"{schema}: no field {f}")
                continue
            entry[f] = field_entry(props[f], schema, f)
        out["schemas"][schema] = {"fields": entry}

    # Every schema a kept field refers to is kept too, so the checks can recurse.
    for schema, entry in out["schemas"].items():
        for f, e in entry["fields"].items():
            ref = e.get("ref") or e.get("items", {}).get("ref")
            if ref and ref not in out["schemas"]:
                errors.append(f"{schema}.{f} refers to {ref}, which SCHEMAS does not list")

    if errors:
        sys.exit("the discovery document lacks what the fake uses:\n  " + "\n  ".join(errors))
    print(json.dumps(out, indent=1, sort_keys=False))


if __name__ == "__main__":
    main()
