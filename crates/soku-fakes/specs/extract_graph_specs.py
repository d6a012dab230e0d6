#!/usr/bin/env python3
"""Regenerates graph-api-extract.json: the few names the Graph fake (src/graph/) relies on,
taken from Meta's machine-readable API specs, so that tests/graph_specs.rs can check the fake
against them without the spec files themselves being copied into this repository.

Source: https://github.com/facebook/facebook-business-sdk-codegen, files api_specs/specs/*.json
and api_specs/specs/enum_types.json. Only names, types, required flags and the line of each in
the spec file at the given commit are kept (facts about Meta's API, each cited by file and line),
not the specs' text.

Usage (from the repository root, with a clone or bare mirror of the codegen repository):
    python3 crates/soku-fakes/specs/extract_graph_specs.py <codegen-git-dir> [<commit>]
The commit defaults to the one below, the snapshot the fake was written against (v25.0 specs).

When the fake accepts a new parameter or returns a new field: add its name to WANTED and run
the script again. It stops with an error when the spec does not have the name: that is the
drift the check exists to catch, so fix the fake rather than the list.
"""
import json
import subprocess
import sys

COMMIT = "ad2b0b6fdfbe4d73ed0754cb4562ef20b72b40d4"

# (spec node type, method, endpoint or "#get") -> parameters the fake accepts (beyond the
# generic access_token, fields, limit, after, before, which the specs never list).
CALLS = {
    ("User", "GET", "#get"): [],
    ("User", "GET", "accounts"): [],
    ("Page", "GET", "#get"): [],
    ("Page", "POST", "feed"): ["message", "link", "published", "scheduled_publish_time",
                               "attached_media", "unpublished_content_type"],
    ("Page", "POST", "photos"): ["url", "caption", "published", "temporary"],
    ("Page", "POST", "videos"): ["file_url", "description", "title", "published"],
    ("Page", "GET", "posts"): ["limit"],
    ("Page", "GET", "published_posts"): ["limit"],
    ("Page", "GET", "feed"): ["limit"],
    ("Page", "GET", "videos"): [],
    ("Page", "POST", "video_reels"): ["upload_phase", "video_id", "video_state", "description",
                                      "title"],
    ("Page", "GET", "video_reels"): ["since", "until"],
    ("Page", "POST", "video_stories"): ["upload_phase", "video_id", "video_state"],
    ("Page", "POST", "photo_stories"): ["photo_id"],
    ("Page", "GET", "stories"): ["since", "until"],
    ("PagePost", "GET", "#get"): [],
    ("Photo", "GET", "#get"): [],
    ("AdVideo", "GET", "#get"): [],
    ("IGUser", "GET", "#get"): [],
    ("IGUser", "POST", "media"): ["image_url", "video_url", "media_type", "is_carousel_item",
                                  "children", "caption", "share_to_feed", "cover_url",
                                  "thumb_offset", "trial_params", "alt_text", "audio_name",
                                  "collaborators", "location_id"],
    ("IGUser", "POST", "media_publish"): ["creation_id"],
    ("IGUser", "GET", "content_publishing_limit"): ["since"],
    ("IGUser", "GET", "media"): ["since", "until"],
    ("IGUser", "GET", "stories"): [],
    ("IGMedia", "GET", "#get"): [],
    ("ShadowIGMediaBuilder", "GET", "#get"): [],
}

# spec type -> fields the fake returns for it.
TYPES = {
    "User": ["id", "name"],
    "Page": ["id", "name", "category", "access_token", "instagram_business_account"],
    "IGUser": ["id", "username", "name", "profile_picture_url"],
    "IGMedia": ["id", "caption", "timestamp", "permalink", "media_type", "media_product_type",
                "shortcode", "username", "media_url", "owner"],
    "ShadowIGMediaBuilder": ["id", "status", "status_code"],
    "ContentPublishingLimitResponse": ["config", "quota_usage"],
    "PagePost": ["id", "message", "created_time", "permalink_url"],
    "Photo": ["id", "created_time"],
    "AdVideo": ["id", "status", "description", "title", "created_time", "permalink_url",
                "published"],
    "VideoStatus": ["video_status", "uploading_phase", "processing_phase", "publishing_phase"],
    "VideoStatusUploadingPhase": ["status"],
    "VideoStatusProcessingPhase": ["status", "errors"],
    "VideoStatusPublishingPhase": ["status", "publish_status"],
    "VideoStatusError": ["code", "message"],
    "Stories": ["post_id", "status", "creation_time", "media_type", "media_id", "url"],
}

# enum param types whose values the fake relies on: (enum name, values the fake sends/takes).
ENUMS = {
    "pagefeed_unpublished_content_type_enum_param": ["SCHEDULED"],
    "pagevideo_reels_upload_phase_enum_param": ["START", "FINISH"],
    "pagevideo_reels_video_state_enum_param": ["PUBLISHED", "DRAFT"],
    "pagevideo_stories_upload_phase_enum_param": ["START", "FINISH"],
    "pagevideo_stories_video_state_enum_param": ["PUBLISHED"],
}


def show(git_dir, commit, path):
    return subprocess.check_output(["git", "-C", git_dir, "show", f"{commit}:{path}"], text=True)


def line_of(lines, needle, start=0, stop=None):
    stop = len(lines) if stop is None else stop
    for i in range(start, stop):
        if lines[i].strip().rstrip(",") == needle:
            return i
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    git_dir = sys.argv[1]
    commit = sys.argv[2] if len(sys.argv) > 2 else COMMIT
    commit = subprocess.check_output(["git", "-C", git_dir, "rev-parse", commit], text=True).strip()
    version = show(git_dir, commit, "api_specs/specs/version.txt").strip()
    errors = []
    out = {
        "source": {
            "repository": "https://github.com/facebook/facebook-business-sdk-codegen",
            "commit": commit,
            "specs_version": version,
            "generated_by": "crates/soku-fakes/specs/extract_graph_specs.py",
        },
        "calls": [],
        "types": {},
        "enums": {},
    }
    texts = {}

    def spec(node):
        if node not in texts:
            path = f"api_specs/specs/{node}.json"
            text = show(git_dir, commit, path)
            texts[node] = (path, text.splitlines(), json.loads(text))
        return texts[node]

    for (node, method, endpoint), wanted in CALLS.items():
        path, lines, data = spec(node)
        key = "name" if endpoint == "#get" else "endpoint"
        api = next((a for a in data["apis"] if a["method"] == method and a.get(key) == endpoint), None)
        if api is None:
            errors.append(f"{path}: no {method} {endpoint}")
            continue
        # The api's block: its method line next to its endpoint (or "#get" name) line.
        start = None
        for i in range(1, len(lines) - 1):
            if lines[i].strip().rstrip(",") == f'"{key}": "{endpoint}"' and any(
                    lines[j].strip().rstrip(",") == f'"method": "{method}"' for j in (i - 1, i + 1)):
                start = i
                break
        stop = next((j for j in range(start + 2, len(lines)) if lines[j].strip() in ("{", "},", "}")
                     and lines[j].startswith("        ") and not lines[j].startswith("         ")),
                    len(lines))
        entry = {"node": node, "method": method, "endpoint": endpoint, "file": path,
                 "line": start + 1, "return": api.get("return"), "params": []}
        by_name = {p["name"]: p for p in api.get("params", [])}
        for name in wanted:
            p = by_name.get(name)
            if p is None:
                errors.append(f"{path}: {method} {endpoint} has no parameter {name}")
                continue
            ln = line_of(lines, f'"name": "{name}"', start, stop)
            entry["params"].append({"name": name, "type": p["type"],
                                    "required": bool(p.get("required")), "line": ln + 1})
        # Required parameters the fake does not take would make every call of the fake invalid.
        for p in api.get("params", []):
            if p.get("required") and p["name"] not in wanted:
                errors.append(f"{path}: {method} {endpoint} requires {p['name']}, the fake does not take it")
        out["calls"].append(entry)

    for node, wanted in TYPES.items():
        path, lines, data = spec(node)
        fields_at = line_of(lines, '"fields": [')
        by_name = {f["name"]: f for f in data.get("fields", [])}
        t = {"file": path, "fields": []}
        for name in wanted:
            f = by_name.get(name)
            if f is None:
                errors.append(f"{path}: no field {name}")
                continue
            ln = line_of(lines, f'"name": "{name}"', fields_at or 0)
            t["fields"].append({"name": name, "type": f["type"], "line": ln + 1})
        out["types"][node] = t

    enum_path = "api_specs/specs/enum_types.json"
    enums = json.loads(show(git_dir, commit, enum_path))
    for name, wanted in ENUMS.items():
        e = next((e for e in enums if e["name"] == name), None)
        if e is None:
            errors.append(f"{enum_path}: no enum {name}")
            continue
        missing = [v for v in wanted if v not in e["values"]]
        if missing:
            errors.append(f"{enum_path}: {name} lacks {missing}")
        out["enums"][name] = {"file": enum_path, "values": [v for v in wanted if v in e["values"]]}

    if errors:
        sys.exit("the specs do not have what the fake uses:\n  " + "\n  ".join(errors))
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
