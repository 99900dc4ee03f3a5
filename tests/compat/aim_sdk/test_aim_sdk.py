#!/usr/bin/env python3
"""Compatibility suite: the published Python client aim-sdk 2.0.3, unmodified, against this server.

Run through tests/compat/aim_sdk/run.sh, which starts a fresh server and sets:
  AIM_URL             base URL of the server (plain HTTP on loopback)
  AIM_ADMIN_EMAIL     the bootstrap admin (AIM_BOOTSTRAP_ADMIN_EMAIL)
  AIM_ADMIN_PASSWORD  its password (AIM_BOOTSTRAP_ADMIN_PASSWORD; not a one-time password)

The tests run in name order and build on each other (one organization, one SDK agent):
  00 native admin setup: login, an API key (role manager), a second manager (the approver)
  01 secure() registers through the API key                      (issue flow b)
  02 an allowed @perform_action runs                              (c)
  03 a never-granted capability is denied and the body never runs (d)
  04 request_capability -> approval by the other manager -> runs  (e)
  05 signed context with unicode/nested/floats is approved        (f)
  06 secure(mcp_servers=[...]) registers the MCP server           (g)
  07 a restarted process takes the cached-credentials path        (h)
  08 a require_approval policy: pending -> approved -> runs       (i)
  09 the audit log holds all of it and verifies                   (j)
Wire facts of the SDK: docs/sdk-wire.md.
"""
import atexit
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD_FLAG = "--restart-child"

# Isolate the SDK's files BEFORE it is imported: it writes ~/.aim/agents/<name>.json and reads
# ~/.aim/, ~/.claude/ and ./.aim/ (in the working directory and its ancestors). The parent
# process makes a fresh HOME; the restart child (test 07) inherits it on purpose.
if CHILD_FLAG not in sys.argv:
    _home = tempfile.mkdtemp(prefix="aim-sdk-compat-home-")
    atexit.register(shutil.rmtree, _home, True)  # registered first, so it runs last
    os.environ["HOME"] = _home
os.chdir(os.environ["HOME"])

try:
    AIM_URL = os.environ["AIM_URL"].rstrip("/")
    ADMIN_EMAIL = os.environ["AIM_ADMIN_EMAIL"]
    ADMIN_PASSWORD = os.environ["AIM_ADMIN_PASSWORD"]
except KeyError as missing:
    sys.exit(f"set {missing} (tests/compat/aim_sdk/run.sh does it); see the module docstring")

import requests  # noqa: E402  (an aim-sdk dependency)

import aim_sdk  # noqa: E402
from aim_sdk.exceptions import ActionDeniedError, AIMError  # noqa: E402

AGENT_NAME = "compat-agent"
MCP_AGENT_NAME = "compat-mcp-agent"
MCP_SERVER_NAME = "compat-fs"
APPROVER_EMAIL = "approver@compat.test"
# Every decorated call gets a short approval timeout: an unexpected `pending` fails in seconds
# instead of the SDK's default 300 s.
SHORT = 20


# ---------------------------------------------------------------------------------------------
# Native API helpers (requests, like any HTTP client of the server)

class Native:
    """A native-API caller with a bearer access token or an API key."""

    def __init__(self, who, token=None, api_key=None):
        self.who = who
        self.headers = {}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if api_key:
            self.headers["X-API-Key"] = api_key

    def call(self, method, path, body=None, expect=(200,), params=None, why=""):
        if isinstance(expect, int):
            expect = (expect,)
        try:
            r = requests.request(method, AIM_URL + path, json=body, params=params,
                                 headers=self.headers, timeout=30)
        except requests.RequestException as e:
            raise AssertionError(f"{why}: {method} {path} as {self.who} failed: {e}") from None
        if r.status_code not in expect:
            raise AssertionError(
                f"{why}: {method} {path} as {self.who} answered {r.status_code} {r.text[:600]!r} "
                f"(expected {'/'.join(map(str, expect))})")
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            raise AssertionError(f"{why}: {method} {path} answered a non-JSON body {r.text[:300]!r}") from None


def login(email, password, why):
    return Native("anonymous").call("POST", "/api/v1/auth/login",
                                    {"email": email, "password": password}, why=why)


def wait_for(what, probe, timeout=20.0, interval=0.25):
    """Calls probe() until it returns something truthy; fails with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} (waited {timeout:.0f} s)")
        time.sleep(interval)


def sdk_error(e):
    return f"{type(e).__name__}: {e}"


# State shared by the ordered tests.
S = SimpleNamespace(admin=None, admin_id=None, api_key=None, manager=None, agent=None,
                    agent_id=None, pending_action_id=None, mcp_agent_id=None)


class AimSdkCompat(unittest.TestCase):
    maxDiff = 2000

    def need(self, *attrs):
        for a in attrs:
            if getattr(S, a) is None:
                self.fail(f"not run: an earlier test did not produce `{a}` (see its failure above)")

    # -- a ------------------------------------------------------------------------------------
    def test_00_native_admin_setup(self):
        tokens = login(ADMIN_EMAIL, ADMIN_PASSWORD, "the bootstrap admin cannot log in")
        self.assertFalse(tokens.get("passwordChangeRequired"),
                         "a bootstrap password given by AIM_BOOTSTRAP_ADMIN_PASSWORD must not have to be changed")
        admin = Native("admin", token=tokens["accessToken"])
        S.admin_id = admin.call("GET", "/api/v1/auth/me", why="admin /auth/me")["id"]

        key = admin.call("POST", "/api/v1/api-keys", {"name": "aim-sdk compat", "role": "manager"},
                         expect=201, why="an admin cannot create the API key the SDK needs")
        self.assertTrue(key.get("key", "").startswith("aim_live_"),
                        f"the API key is shown once at creation, got {key!r}")

        user = admin.call("POST", "/api/v1/users", {"email": APPROVER_EMAIL, "role": "manager"},
                          expect=201, why="an admin cannot create the approving manager")
        otp = user.get("oneTimePassword")
        self.assertTrue(otp, f"a user created without a password gets a one-time password: {user!r}")
        first = login(APPROVER_EMAIL, otp, "the new manager cannot log in with the one-time password")
        self.assertTrue(first.get("passwordChangeRequired"),
                        "a one-time password must be changed at first login")
        new_password = "Compat-" + secrets.token_hex(10)
        Native("approver (one-time password)", token=first["accessToken"]).call(
            "POST", "/api/v1/auth/change-password",
            {"currentPassword": otp, "newPassword": new_password}, expect=(200, 204),
            why="the new manager cannot replace the one-time password")
        second = login(APPROVER_EMAIL, new_password, "the new manager cannot log in with the new password")
        self.assertFalse(second.get("passwordChangeRequired"))

        S.admin = admin
        S.api_key = key["key"]
        S.manager = Native("approver", token=second["accessToken"])

    # -- b ------------------------------------------------------------------------------------
    def test_01_secure_registers_with_api_key(self):
        self.need("admin", "api_key")
        try:
            agent = aim_sdk.secure(AGENT_NAME, aim_url=AIM_URL, api_key=S.api_key,
                                   capabilities=["db:read"])
        except AIMError as e:
            self.fail(f"the SDK's one-line registration fails: secure() raised {sdk_error(e)}")
        self.assertTrue(agent.agent_id, "secure() returned an agent without an id")

        creds = os.path.join(os.environ["HOME"], ".aim", "agents", f"{AGENT_NAME}.json")
        self.assertTrue(os.path.isfile(creds),
                        f"the SDK did not save its credentials to {creds}: a restart would register again")
        with open(creds) as f:
            saved = json.load(f)
        self.assertEqual(saved.get("agent_id"), agent.agent_id,
                         "the saved credentials name another agent than secure() returned")
        self.assertNotIn(S.api_key, json.dumps(saved), "the API key must not be written to disk")
        self.assertEqual(saved.get("aim_url", "").rstrip("/"), AIM_URL,
                         "the registration answer's aimUrl redirects all later agent traffic (it is "
                         "saved and overrides aim_url on restart) to another URL than the server's")

        native = S.admin.call("GET", f"/api/v1/agents/{agent.agent_id}",
                              why="the SDK-registered agent is not visible in the native API")
        self.assertEqual(native.get("name"), AGENT_NAME)
        self.assertEqual(native.get("status"), "active",
                         "an agent registered by secure() must be usable at once (status active)")
        self.assertIn("db:read", native.get("capabilities", []),
                      "a capability declared by a manager API key must be granted at registration")
        self.assertEqual(native.get("publicKey", "").rstrip("="), agent.public_key.rstrip("="),
                         "the server holds another public key than the SDK saved: signatures will fail")
        self.assertEqual(native.get("ownerId"), S.admin_id,
                         "the agent must be owned by the API key's user")
        S.agent = agent
        S.agent_id = agent.agent_id

    # -- c ------------------------------------------------------------------------------------
    def test_02_allowed_action_runs(self):
        self.need("agent")
        ran = []

        @S.agent.perform_action(capability="db:read", resource="users", timeout_seconds=SHORT)
        def list_users():
            ran.append(True)
            return ["alice", "bob"]

        try:
            value = list_users()
        except AIMError as e:
            self.fail(f"a granted action is blocked: @perform_action('db:read') raised {sdk_error(e)}")
        self.assertEqual(value, ["alice", "bob"], "the decorated function's value was not returned")
        self.assertEqual(ran, [True])

    # -- d ------------------------------------------------------------------------------------
    def test_03_ungranted_action_is_denied(self):
        self.need("agent", "admin")
        ran = []

        @S.agent.perform_action(capability="db:delete", resource="users", timeout_seconds=SHORT)
        def delete_users():
            ran.append(True)
            return "deleted"

        try:
            delete_users()
        except ActionDeniedError:
            pass
        except AIMError as e:
            self.fail("an ungranted action must be DENIED (ActionDeniedError); the SDK raised "
                      f"{sdk_error(e)} instead")
        else:
            self.fail("an ungranted action (db:delete) ran: the server approved it")
        self.assertEqual(ran, [], "the body of a denied action ran")

        caps = S.admin.call("GET", f"/api/v1/agents/{S.agent_id}/capabilities",
                            why="native capability listing")
        self.assertNotIn("db:delete", caps.get("grants", []),
                         "the SDK's automatic capabilities/register call GRANTED db:delete")
        pending = [r.get("capability") for r in caps.get("pendingRequests", [])]
        self.assertIn("db:delete", pending,
                      "the SDK's automatic capabilities/register call should leave a pending "
                      f"capability request for db:delete; pending requests: {pending}")
        listed = S.admin.call("GET", "/api/v1/capability-requests",
                              params={"status": "pending", "agentId": S.agent_id},
                              why="the approval queue")
        self.assertIn("db:delete", [r.get("capability") for r in listed.get("items", [])],
                      "the pending db:delete request is not in the managers' approval queue")

    # -- e ------------------------------------------------------------------------------------
    def test_04_requested_capability_approved_by_other_manager(self):
        self.need("agent", "admin", "manager")
        try:
            req = S.agent.request_capability("files:write", reason="needs to write nightly reports")
        except AIMError as e:
            self.fail(f"agent.request_capability() fails: {sdk_error(e)}")
        self.assertEqual(req.get("status"), "pending", f"a capability request must be pending: {req!r}")
        request_id = req.get("id")
        self.assertTrue(request_id, f"the capability request answer carries no id: {req!r}")

        # Asking again at once while it waits: the server answers 409 — `request_pending`, or
        # `replayed_request` when the call falls in the same second (the SDK's signed-header
        # scheme has no nonce and signs whole seconds, so it is byte-identical) — and the SDK
        # lists the agent's requests (GET …/capability-requests) and returns the pending one.
        try:
            again = S.agent.request_capability("files:write", reason="needs to write nightly reports")
        except AIMError as e:
            self.fail(f"asking again for a capability that is already pending fails: {sdk_error(e)}")
        self.assertEqual(again.get("id"), request_id,
                         f"asking again should return the pending request, got {again!r}")

        queue = S.manager.call("GET", "/api/v1/capability-requests",
                               params={"status": "pending", "agentId": S.agent_id},
                               why="the approval queue")
        mine = [r for r in queue.get("items", []) if r.get("capability") == "files:write"]
        self.assertEqual([r.get("id") for r in mine], [request_id],
                         "the SDK's request id is not the request managers see in the queue")

        # Separation of duties: the API key's user owns the agent and may not approve.
        S.admin.call("POST", f"/api/v1/capability-requests/{request_id}/approve", {},
                     expect=403, why="the agent's owner must not approve its capability request")
        approved = S.manager.call("POST", f"/api/v1/capability-requests/{request_id}/approve",
                                  {"note": "aim-sdk compat"}, why="the second manager cannot approve")
        self.assertIn("files:write", approved.get("grants", []))

        @S.agent.perform_action(capability="files:write", resource="reports/nightly.csv",
                                timeout_seconds=SHORT)
        def write_report():
            return "written"

        try:
            self.assertEqual(write_report(), "written")
        except AIMError as e:
            self.fail(f"an approved capability is still blocked: {sdk_error(e)}")

    # -- f ------------------------------------------------------------------------------------
    def test_05_signed_context_canonical_json(self):
        self.need("agent")
        contexts = {
            "issue example": {"é": "ü😀", "n": {"b": 1.5, "a": [1, True, None]}},
            "python json.dumps corner cases": {
                "z": "keys out of order", "quote\"back\\slash": "line\nfeed\ttab\x01\x7f/",
                "floats": [0.1, 1e-05, 1e+16, 2.5e-300, -0.0, 100.0],
                "big": 12345678901234567890, "empty": {}, "list": [], "no": False,
                # Python sorts keys by code point: U+FF01 before U+1F600 (UTF-16 order differs).
                "\uff01": "fullwidth", "\U0001f600": "astral",
            },
            "no resource, empty context": None,
        }
        for label, ctx in contexts.items():
            with self.subTest(context=label):
                resource = None if ctx is None else "users"
                try:
                    res = S.agent.verify_capability("db:read", resource=resource, context=ctx,
                                                    timeout_seconds=SHORT)
                except AIMError as e:
                    self.fail(f"verify_capability('db:read', resource={resource!r}, context={ctx!r}) is "
                              f"refused ({sdk_error(e)}): the server does not accept the SDK's signed "
                              "verification (Python json.dumps canonical form, docs/sdk-wire.md §2.2)")
                self.assertTrue(res.get("verified"), f"not verified: {res!r}")

        ran = []

        @S.agent.perform_action(capability="db:read", resource="users",
                                context=contexts["issue example"], timeout_seconds=SHORT)
        def read_with_context():
            ran.append(True)
            return 1

        try:
            read_with_context()
        except AIMError as e:
            self.fail(f"a decorated call with a unicode/nested context is refused: {sdk_error(e)}")
        self.assertEqual(ran, [True])

    # -- g ------------------------------------------------------------------------------------
    def test_06_mcp_server_registered_by_sdk(self):
        self.need("admin", "api_key")
        # secure(mcp_servers=[name]) looks the name up in the Claude Desktop config (Linux path
        # ~/.claude/claude_desktop_config.json) and registers it from a background thread. The
        # configured command is a harmless stdio MCP double; the SDK only starts it for tool
        # discovery when the optional `mcp` package is installed.
        claude = os.path.join(os.environ["HOME"], ".claude")
        os.makedirs(claude, exist_ok=True)
        with open(os.path.join(claude, "claude_desktop_config.json"), "w") as f:
            json.dump({"mcpServers": {MCP_SERVER_NAME: {
                "command": "python3", "args": [os.path.join(HERE, "fake_mcp_server.py")]}}}, f)
        try:
            agent = aim_sdk.secure(MCP_AGENT_NAME, aim_url=AIM_URL, api_key=S.api_key,
                                   mcp_servers=[MCP_SERVER_NAME])
        except AIMError as e:
            self.fail(f"secure(mcp_servers=[...]) fails: {sdk_error(e)}")
        S.mcp_agent_id = agent.agent_id
        thread = getattr(agent, "_mcp_registration_thread", None)
        self.assertIsNotNone(thread, "the SDK did not start its MCP registration (name not found "
                                     "in the Claude Desktop config?)")
        thread.join(20)

        def listed():
            servers = S.admin.call("GET", "/api/v1/mcp-servers", why="native MCP server list")
            return [s for s in servers.get("servers", []) if s.get("name") == MCP_SERVER_NAME]

        wait_for(f"the MCP server {MCP_SERVER_NAME!r} registered by secure(mcp_servers=...) never "
                 "appeared in GET /api/v1/mcp-servers", listed)

    # -- h ------------------------------------------------------------------------------------
    def test_07_restart_uses_cached_credentials(self):
        self.need("agent", "api_key")
        env = dict(os.environ, AIM_COMPAT_API_KEY=S.api_key)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), CHILD_FLAG],
                              env=env, capture_output=True, text=True, timeout=90)
        marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("AIM_COMPAT_RESULT ")]
        if proc.returncode != 0 or not marker:
            self.fail("a restarted agent process (second secure() with saved credentials) fails:\n"
                      f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
        out = json.loads(marker[-1][len("AIM_COMPAT_RESULT "):])
        if out.get("error"):
            self.fail(f"after a restart the agent cannot act: {out['error']}")
        self.assertEqual(out["agentId"], S.agent_id,
                         "the restarted process registered a new agent instead of reusing its credentials")
        self.assertTrue(out["cachedPath"], "the restarted process did not take the cached-credentials path")
        self.assertEqual(out["result"], "rows")

    # -- i ------------------------------------------------------------------------------------
    def test_08_pending_action_approved_while_sdk_polls(self):
        self.need("agent", "admin", "manager")
        cedar = (
            '@id("default-permit-granted")\n'
            "permit(principal, action, resource);\n\n"
            '@id("compat-ledger-approval")\n@effect("require_approval")\n'
            'permit(principal, action == Action::"ledger:read", resource);\n'
        )
        S.admin.call("PUT", "/api/v1/policies", {"language": "cedar", "source": cedar},
                     expect=(200, 201), why="an admin cannot install a require_approval policy")
        S.admin.call("POST", f"/api/v1/agents/{S.agent_id}/capabilities", {"capability": "ledger:read"},
                     why="an admin cannot grant ledger:read")

        box = {}

        @S.agent.perform_action(capability="ledger:read", resource="ledger/2026", timeout_seconds=60)
        def read_ledger():
            box["ran_at"] = time.monotonic()
            return "balance"

        def call():
            try:
                box["value"] = read_ledger()
            except BaseException as e:  # reported by the main thread
                box["error"] = e

        worker = threading.Thread(target=call, daemon=True)
        worker.start()

        def pending_action():
            if "error" in box:
                raise AssertionError(f"the SDK gave up before the approval: {sdk_error(box['error'])}")
            page = S.manager.call("GET", "/api/v1/actions",
                                  params={"status": "pending", "agentId": S.agent_id},
                                  why="the pending-actions queue")
            return [a for a in page.get("actions", []) if a.get("capability") == "ledger:read"]

        pending = wait_for("the decorated ledger:read call never showed up as a pending action "
                           "(GET /api/v1/actions?status=pending)", pending_action)
        self.assertNotIn("ran_at", box, "the function ran before anyone approved it")
        action_id = pending[0]["id"]
        approved_at = time.monotonic()
        S.manager.call("POST", f"/api/v1/actions/{action_id}/approve", {"note": "aim-sdk compat"},
                       why="the second manager cannot approve the pending action")
        worker.join(40)
        self.assertFalse(worker.is_alive(), "the SDK is still polling 40 s after the approval")
        if "error" in box:
            self.fail(f"an approved pending action is blocked: {sdk_error(box['error'])}")
        self.assertEqual(box.get("value"), "balance")
        self.assertGreaterEqual(box["ran_at"], approved_at, "the function ran before the approval")
        S.pending_action_id = action_id

    # -- j ------------------------------------------------------------------------------------
    def test_09_audit_log_records_everything_and_verifies(self):
        self.need("admin", "agent_id")
        entries, from_seq = [], 0
        for _ in range(100):
            page = S.admin.call("GET", "/api/v1/audit/entries",
                                params={"fromSeq": from_seq, "limit": 1000}, why="audit entries")
            entries.extend(page.get("items", []))
            if page.get("nextFromSeq") is None:
                break
            from_seq = page["nextFromSeq"]

        def of(event, *needles):
            found = []
            for e in entries:
                if e.get("eventType") != event:
                    continue
                text = json.dumps(e, ensure_ascii=False)
                if all(n in text for n in needles):
                    found.append(e)
            return found

        seen = sorted({e.get("eventType") for e in entries})
        registered = of("agent.registered", S.agent_id)
        self.assertTrue(registered, f"no agent.registered entry for the SDK agent; event types: {seen}")
        self.assertEqual(registered[0].get("payload", {}).get("via"), "aim-sdk",
                         f"agent.registered should say via aim-sdk: {registered[0].get('payload')!r}")

        verified = of("agent.action.verified", S.agent_id)
        statuses = {e.get("payload", {}).get("status") for e in verified}
        self.assertIn("approved", statuses, f"no approved agent.action.verified entry ({statuses})")
        self.assertIn("denied", statuses, f"no denied agent.action.verified entry ({statuses})")
        self.assertTrue([e for e in verified if e.get("payload", {}).get("status") == "denied"
                         and e["payload"].get("capability") == "db:delete"],
                        "the denied db:delete call is not in the audit log")

        self.assertTrue(of("capability.requested", S.agent_id, "files:write"),
                        "request_capability('files:write') left no capability.requested entry")
        self.assertTrue(of("capability.requested", S.agent_id, "db:delete"),
                        "the automatic db:delete registration left no capability.requested entry")
        self.assertTrue(of("capability.request.approved", S.agent_id, "files:write"),
                        "the files:write approval left no capability.request.approved entry")
        self.assertTrue(of("mcp_server.registered", MCP_SERVER_NAME),
                        "the SDK's MCP registration left no mcp_server.registered entry")
        if S.pending_action_id:
            self.assertTrue(of("agent.action.approved", S.pending_action_id),
                            "the approval of the pending action left no agent.action.approved entry")

        verdict = S.admin.call("GET", "/api/v1/audit/verify", why="audit verification")
        self.assertTrue(verdict.get("ok"), f"the audit chain does not verify: {verdict!r}")


def restart_child():
    """Test 07, in a fresh process with the same HOME: secure() must find the saved credentials
    (~/.aim/agents/compat-agent.json), check them with GET /api/v1/agents/{id} and act."""
    out = {}
    try:
        agent = aim_sdk.secure(AGENT_NAME, aim_url=AIM_URL, api_key=os.environ["AIM_COMPAT_API_KEY"])
        out["agentId"] = agent.agent_id
        # Only the cached path builds the client with the API key (a fresh registration does not).
        out["cachedPath"] = bool(getattr(agent, "api_key", None))

        @agent.perform_action(capability="db:read", resource="users", timeout_seconds=SHORT)
        def read_rows():
            return "rows"

        out["result"] = read_rows()
    except Exception as e:  # reported by the parent
        out["error"] = sdk_error(e)
    print("AIM_COMPAT_RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    if CHILD_FLAG in sys.argv:
        restart_child()
    else:
        unittest.main(argv=[sys.argv[0], "-v", *sys.argv[1:]], buffer=True)
