#!/usr/bin/python3
"""Evaluate the shipped dashboard and alert rules through Prometheus.

Usage: prom_eval.py PROM_URL DASHBOARD_JSON ALERTS_YML

Every target of every dashboard panel is run through /api/v1/query: it
must succeed and return data (the cluster is under load, so every panel
has something to show), except in panels marked "triplexMayBeEmpty"
(a rebuild's progress, when none runs), which need only succeed. Every alert rule Prometheus loaded must have been
evaluated with health "ok", and its expression must run through the
query API without error (alerts may well return nothing). Prints one
line per failure and a summary; exits 1 on any failure.
"""
import json
import re
import sys
import urllib.parse
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def query(prom, expr):
    try:
        return get(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except urllib.error.HTTPError as e:  # 400 for a bad expression
        return json.load(e)


def dashboard_targets(path):
    dash = json.load(open(path))
    ids = set()
    for p in dash["panels"]:
        if p["id"] in ids:
            yield p["title"], None, "duplicate panel id %d" % p["id"]
        ids.add(p["id"])
        for key in ("title", "type", "gridPos"):
            if key not in p:
                yield p.get("title", "?"), None, "panel without %s" % key
        if p["type"] == "row":
            continue
        if not p.get("targets"):
            yield p["title"], None, "panel without targets"
        for t in p.get("targets", []):
            if not t.get("expr") or not t.get("refId"):
                yield p["title"], None, "target without expr or refId"
            else:
                yield p["title"], t["expr"], p.get("triplexMayBeEmpty", False)


def main():
    prom, dash_path, alerts_path = sys.argv[1:]
    failures, ok, total = [], 0, 0
    for title, expr, problem in dashboard_targets(dash_path):
        may_be_empty = problem is True
        if problem is True or problem is False:
            problem = None
        if problem:
            failures.append("dashboard %r: %s" % (title, problem))
            continue
        total += 1
        r = query(prom, expr)
        if r.get("status") != "success":
            failures.append("dashboard %r: %s: %s" % (title, expr, r.get("error")))
        elif not r["data"]["result"] and not may_be_empty:
            failures.append("dashboard %r: no data for %s" % (title, expr))
        elif r["data"]["result"]:
            ok += 1
    shipped = set(re.findall(r"^\s*- alert:\s*(\S+)", open(alerts_path).read(), re.M))
    rules = [rule for g in get(prom + "/api/v1/rules")["data"]["groups"]
             for rule in g["rules"] if rule["type"] == "alerting"]
    loaded = {rule["name"] for rule in rules}
    for name in sorted(shipped - loaded):
        failures.append("alert %s is not loaded" % name)
    evaluated = 0
    for rule in rules:
        if rule["health"] != "ok":
            failures.append("alert %s: health %s: %s" % (rule["name"], rule["health"],
                                                          rule.get("lastError")))
            continue
        r = query(prom, rule["query"])
        if r.get("status") != "success":
            failures.append("alert %s: %s" % (rule["name"], r.get("error")))
            continue
        evaluated += 1
    for f in failures:
        print("FAIL " + f)
    firing = sorted({rule["name"] for rule in rules if rule["state"] == "firing"})
    print("dashboard: %d of %d queries with data; alerts: %d of %d evaluated ok; "
          "firing: %s" % (ok, total, evaluated, len(shipped), ", ".join(firing) or "none"))
    sys.exit(1 if failures else 0)


main()
