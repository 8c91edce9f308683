#!/usr/bin/env python3
"""A minimal Doorstep sync client, written from docs/ alone (standard library only).

Copy `DoorstepClient` into your own program: it enrols a device with a one-time code, pushes
operations as JSON and pulls pages until `has_more` is false, handling the documented errors
(docs/sync-protocol.md, docs/api/openapi.json). If the `jsonschema` package is importable,
every body it sends and receives is validated against docs/api/wire.schema.json.

Run as a script, it plays two phones against a server (this is what scripts/test.sh runs):

    python3 docs/examples/python_client.py --server http://127.0.0.1:8080 \\
        --code CODE_A --code-b CODE_B --village 22738-01

Device A enrols with CODE_A, pulls its scope, records a household, a resident, a visit and an
assistance step and pushes them (twice: the second push is all duplicates); device B (another
officer of the same village) enrols with CODE_B and must pull A's visit. Then the documented
errors. It prints one line per check and exits non-zero if any fails.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

PROTOCOL = 2
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api", "wire.schema.json")


class DoorstepError(Exception):
    """A 4xx/5xx answer: `{"error": code, "message": words, "supported"?: [..], "reason"?: why}`."""

    def __init__(self, status, body):
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.error = self.body.get("error", "")
        self.message = self.body.get("message", "")
        self.reason = self.body.get("reason")  # on a refused enrolment code: unknown, used, expired
        super().__init__(f"{status} {self.error}: {self.message}")


class SchemaCheck:
    """Validates bodies against `#/$defs/<Type>` of the wire schema, if jsonschema is there."""

    def __init__(self, path=SCHEMA_FILE):
        try:
            import jsonschema  # noqa: F401  (optional)
        except ImportError:
            print("schema validation skipped: the jsonschema package is not installed")
            self.doc = None
            return
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.jsonschema = jsonschema

    def check(self, type_name, body):
        if self.doc is None:
            return
        schema = dict(self.doc)
        schema["$ref"] = "#/$defs/" + type_name
        cls = self.jsonschema.Draft202012Validator
        cls(schema, format_checker=cls.FORMAT_CHECKER).validate(body)

    def errors(self, type_name, body):
        """The schema's complaints about `body` (an empty list if valid or not checked)."""
        if self.doc is None:
            return []
        schema = dict(self.doc)
        schema["$ref"] = "#/$defs/" + type_name
        cls = self.jsonschema.Draft202012Validator
        return list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(body))


class DoorstepClient:
    """One device: its replica, its token, its counter and clock."""

    RETRY_STATUSES = (429, 500, 503)

    def __init__(self, base_url, schema=None, replica=None, tries=6):
        self.base = base_url.rstrip("/")
        self.schema = schema or SchemaCheck()
        self.replica = str(replica or uuid.uuid4())
        self.token = None
        self.officer_id = None
        self.counter = 0  # counters start at 1 (the first operation gets 1)
        self.last_hlc = 0
        self.offset_ms = 0  # server_time - device_time, from the latest answer
        self.cursor = None
        self.held = 0  # what the server holds of this replica, from the latest pull
        self.tries = tries

    # --- transport -------------------------------------------------------------------------

    def _post(self, path, body, req_type, answer_type, auth=True, check=True):
        if check:
            self.schema.check(req_type, body)
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = "Bearer " + self.token
        delay = 0.5
        for attempt in range(self.tries):
            req = urllib.request.Request(self.base + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    answer = json.loads(resp.read().decode("utf-8"))
                self.schema.check(answer_type, answer)
                if "server_time_ms" in answer:
                    self.offset_ms = answer["server_time_ms"] - body["device_time_ms"]
                return answer
            except urllib.error.HTTPError as e:
                raw = e.read()
                try:
                    err = json.loads(raw.decode("utf-8")) if raw else {}
                except ValueError:
                    err = {}
                if err:
                    self.schema.check("ErrorBody", err)
                if e.code in self.RETRY_STATUSES and attempt + 1 < self.tries:
                    wait = float(e.headers.get("Retry-After") or delay)
                    time.sleep(min(wait, 30))
                    delay = min(delay * 2, 30)
                    continue
                raise DoorstepError(e.code, err) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if attempt + 1 >= self.tries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 30)
        raise AssertionError("unreachable")

    @staticmethod
    def _now_ms():
        return int(time.time() * 1000)

    # --- the protocol ----------------------------------------------------------------------

    def enrol(self, code, device_name="python example client"):
        """Exchange a one-time code for a token. Raises DoorstepError (401 with `reason`
        unknown/used/expired: ask for a new code; 403: the replica belongs to another device)."""
        body = {
            "protocol": PROTOCOL,
            "code": code,
            "device_name": device_name,
            "replica": self.replica,
            "device_time_ms": self._now_ms(),
        }
        answer = self._post("/v1/enrol", body, "EnrolRequest", "EnrolResponse", auth=False)
        self.token = answer["token"]
        self.officer_id = answer["officer_id"]
        return answer

    def next_op(self, kind, payload):
        """A new operation of this device: the next counter, a fresh HLC stamp
        (Unix ms of the server-corrected clock × 65,536 + a logical counter)."""
        physical = self._now_ms() + self.offset_ms
        hlc = max(physical << 16, self.last_hlc + 1)
        self.last_hlc = hlc
        self.counter += 1
        return {"replica": self.replica, "counter": self.counter, "hlc": hlc, "body": {kind: payload}}

    def push(self, ops, check=True):
        """Send operations (at most 1,000, in counter order); the PushResponse. `check=False`
        sends a body without validating it first."""
        body = {"protocol": PROTOCOL, "device_time_ms": self._now_ms(), "ops": ops}
        return self._post("/v1/sync/push", body, "PushRequest", "PushResponse", check=check)

    def pull_all(self, limit=100):
        """Pull pages until `has_more` is false; every operation received. A real client
        applies each page and stores its cursor in one transaction."""
        ops = []
        while True:
            body = {
                "protocol": PROTOCOL,
                "device_time_ms": self._now_ms(),
                "cursor": self.cursor,
                "limit": limit,
                # The highest counter of our own this client holds. A server that has
                # processed more of our replica (we were restored from an older copy) sends
                # those operations of ours back first.
                "own": self.counter,
                # Other devices' replicas whose signed runs we relay (this client relays none).
                "relaying": [],
            }
            page = self._post("/v1/sync/pull", body, "PullRequest", "PullResponse")
            ops.extend(page["ops"])
            self.cursor = page["cursor"]
            # What the server holds of our replica now: push from there (a server restored
            # from a backup holds less), and never issue a counter at or below it.
            self.held = page["held"]
            self.counter = max(self.counter, self.held)
            if not page["has_more"]:
                return ops


# --- the run the test suite makes ----------------------------------------------------------


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name} {detail}")

    def expect_error(self, name, call, status, error, reason=None):
        try:
            call()
        except DoorstepError as e:
            ok = e.status == status and e.error == error and (reason is None or e.reason == reason)
            self.check(name, ok, f"got {e}, reason {e.reason}")
            return e
        self.check(name, False, "no error")
        return None


def text(s):
    return {"Text": s}


def run(server, code_a, code_b, village):
    checks = Checks()
    schema = SchemaCheck()
    a = DoorstepClient(server, schema)
    enrolled = a.enrol(code_a, "Python phone A")
    checks.check("device A enrolled", bool(enrolled["token"] and enrolled["officer_id"]))

    scope = a.pull_all(limit=25)
    villages = [
        op for op in scope
        if "Set" in op["body"] and op["body"]["Set"]["key"] == {"Code": village}
    ]
    checks.check("A's first pull carries its village", len(villages) > 0, f"{len(scope)} ops")

    household, resident, visit = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    now = int(time.time() * 1000)
    ops = [
        a.next_op("Set", {"entity": "Household", "key": {"Uuid": household},
                          "fields": [["Code", text("PY-001")], ["Village", text(village)],
                                     ["Address", text("Số 12, đường Lê Lợi")]]}),
        a.next_op("Set", {"entity": "Resident", "key": {"Uuid": resident},
                          "fields": [["Household", text(household)],
                                     ["FullName", text("Trần Thị Bình")],
                                     ["BirthDate", text("1985-03-02")], ["Gender", text("female")],
                                     ["Phone", text("0912345678")], ["Account", text("none")]]}),
        a.next_op("Visit", {"id": visit, "household_id": household, "officer_id": a.officer_id,
                            "at_ms": now, "outcome": "Met", "revisit_at_ms": None,
                            "note": None, "location": {"lat_e6": 11564123, "lon_e6": 108988456}}),
        a.next_op("Assist", {"id": str(uuid.uuid4()), "resident_id": resident,
                             "officer_id": a.officer_id, "at_ms": now + 1000,
                             "step": "Level1Guided", "failure": None, "receiving_point": None,
                             "note": None}),
    ]
    pushed = a.push(ops)
    checks.check("push applied 4", pushed["applied"] == 4 and pushed["rejected"] == [], pushed)
    checks.check("acked_counter is 4", pushed["acked_counter"] == 4, pushed)
    again = a.push(ops)
    checks.check("the same push again: 4 duplicates", again["applied"] == 0 and again["duplicates"] == 4, again)

    b = DoorstepClient(server, schema)
    b.enrol(code_b, "Python phone B")
    got = b.pull_all(limit=10)
    visits = [op for op in got if op["body"].get("Visit", {}).get("id") == visit]
    checks.check("device B pulls A's visit", len(visits) == 1, f"{len(got)} ops")
    checks.check("the visit came back as pushed", visits[:1] == [ops[2]], visits)
    own = [op for op in a.pull_all() if op["replica"] == a.replica]
    checks.check("A is not sent its own operations", own == [], own)
    checks.check("the server holds A's operations up to its last counter", a.held == a.counter,
                 (a.held, a.counter))

    # The documented errors.
    c = DoorstepClient(server, schema)
    checks.expect_error("a used code: 401, reason used", lambda: c.enrol(code_a), 401, "unauthorized", "used")
    checks.expect_error("an unknown code: 401, reason unknown", lambda: c.enrol("0000000000"), 401, "unauthorized", "unknown")
    c.token = "not-a-token"
    checks.expect_error("a bad token: 401", lambda: c.push([]), 401, "unauthorized")
    checks.expect_error(
        "protocol 1 (an older client): 400 unsupported_protocol",
        lambda: b._post("/v1/sync/pull", {"protocol": 1, "device_time_ms": 0, "cursor": None, "limit": 1, "own": 0, "relaying": []},
                        "PullRequest", "PullResponse"),
        400, "unsupported_protocol")
    foreign = dict(ops[2], counter=1, replica=str(uuid.uuid4()))
    answer = b.push([foreign])
    reasons = [r["reason"] for r in answer["rejected"]]
    checks.check("another replica's operation: rejected foreign_replica",
                 answer["applied"] == 0 and reasons == ["foreign_replica"], answer)
    wrong = a.next_op("Visit", dict(ops[2]["body"]["Visit"], id=str(uuid.uuid4()), outcome="nobody_home"))
    if schema.doc is not None:
        checks.check("the schema refuses an SQL spelling", len(schema.errors("Op", wrong)) > 0)
    # Sent anyway, to see the server's answer.
    err = checks.expect_error("an SQL spelling: 400 bad_request",
                              lambda: a.push([wrong], check=False), 400, "bad_request")
    checks.check("the error names the field, not the value",
                 err is not None and "outcome" in err.message and "nobody_home" not in err.message,
                 err and err.message)

    skipped = 1 if schema.doc is None else 0  # the schema validation
    print(f"contract: {checks.passed} passed, {checks.failed} failed, {skipped} skipped")
    return 1 if checks.failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--code", required=True, help="enrolment code for device A")
    p.add_argument("--code-b", required=True, help="enrolment code for device B (another officer of the village)")
    p.add_argument("--village", required=True, help="the village both officers are assigned")
    args = p.parse_args()
    try:
        return run(args.server, args.code, args.code_b, args.village)
    except Exception as e:  # an unexpected answer or a body the schema refuses
        print(f"FAIL {type(e).__name__}: {e}")
        print("contract: 0 passed, 1 failed, 0 skipped")
        return 1


if __name__ == "__main__":
    sys.exit(main())
