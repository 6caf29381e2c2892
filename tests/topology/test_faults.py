"""The replicated set-up under faults: nothing lost, nothing duplicated, never silence.

One topology for the module (conftest.py): PostgreSQL, Redis, the action server, two
Rasa replicas behind nginx, the chat page and the review app. The tests run in file
order, and each leaves the topology whole for the next, except the replica killed near
the end. Every conversation is checked against what PostgreSQL holds.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
import urllib.request
import uuid
from typing import Any, Dict, List, Tuple

import aiohttp
import pytest
import socketio

from scripts.prod.topology import Topology, get
from tests.topology.client import customs, say, stored_events, stored_turns, texts
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.topology

QUESTIONS = [
    "why does a disc calcify?",
    "what are the symptoms?",
    "will an x-ray show it?",
    "what is a calcified disc herniation?",
    "who tends to get a calcified herniation?",
    "how is it treated without surgery?",
]
RED_FLAG = "I can't control my bladder any more"
TARGET_DOWN_FOR_S = 150  # the notification target stays down at least this long
ESCALATED: List[str] = []  # conversations whose notifications must arrive, once each
EXPECTED_KEYS: List[str] = []  # their outbox keys, conversation:sign


def sender(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def listening_addresses(port: int) -> List[str]:
    """The local addresses something listens on at `port` (from /proc/net/tcp*, no traffic)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if width == 8:
                    found.append(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.append("::" if set(address) == {"0"} else address)
    return found


# -- deployed security ---------------------------------------------------------------


def test_only_loopback_and_tokens(topology: Topology) -> None:
    """The action server and the replicas listen on loopback; the action server and the
    HTTP API want their tokens; CORS and socket.io accept only the configured origins."""
    for port in [topology.ports.actions, *topology.ports.rasa, topology.ports.nginx, topology.ports.review,
                 topology.ports.web, topology.ports.postgres, topology.ports.redis]:
        assert listening_addresses(port) == ["127.0.0.1"], port

    call = json.dumps({"next_action": "action_show_clinic_contact", "tracker": {"sender_id": "x"}}).encode()
    for headers, expected in (({}, 401), ({"Authorization": "Bearer wrong"}, 401)):
        request = urllib.request.Request(f"{topology.action_url}/webhook", data=call, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        try:
            urllib.request.urlopen(request, timeout=10)
            status = 200
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read())
            assert "token" in body["error"]
        assert status == expected
    token = topology.secrets()["action_server_token"]
    for body in (b"[1, 2]", b"not json", b'{"tracker": {}}'):
        request = urllib.request.Request(f"{topology.action_url}/webhook", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400 and json.loads(refused.value.read())["error"]
    assert get(f"{topology.action_url}/health") == 200

    replica = topology.replica_url(0)
    assert get(f"{replica}/conversations/x/tracker") == 401
    api_token = topology.secrets()["rasa_api_token"]
    assert get(f"{replica}/conversations/x/tracker?token={api_token}") == 200
    assert get(f"{topology.public_url}/conversations/x/tracker?token={api_token}") == 404  # not routed by nginx
    assert get(f"{topology.public_url}/health") == 200
    assert get(f"{topology.public_url}/") == 200  # the chat page, through nginx
    assert get(f"http://127.0.0.1:{topology.ports.review}/login") == 200  # the review app, on PostgreSQL

    allowed = f"http://127.0.0.1:{topology.ports.nginx}"
    for origin, expect in ((allowed, allowed), ("https://evil.example", None)):
        request = urllib.request.Request(f"{topology.public_url}/webhooks/rest/webhook", method="OPTIONS",
                                         headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                got = response.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as error:
            got = error.headers.get("Access-Control-Allow-Origin")
        assert got == expect


async def _socketio_turns(topology: Topology, origin: str) -> Dict[str, Any]:
    """One socket.io conversation through nginx, two turns, over long-polling: every poll
    is a separate HTTP request, so all of them must reach the replica that holds the
    session. (engine.io's websocket client needs a newer aiohttp than Rasa pins;
    the upgrade is checked on its own below.)"""
    url = f"http://localhost:{topology.ports.nginx}"  # a host name: cookie jars keep no cookies for IPs
    client = socketio.AsyncClient(reconnection=False)
    replies: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
    client.on("bot_uttered", lambda data: replies.put_nowait(data))
    client.on("session_confirm", lambda data: replies.put_nowait({"session": data}))
    # As a browser does: no cookie at first; nginx picks a replica and sets rasa_route,
    # which the client's cookie jar sends with every later request of the session.
    await client.connect(url, transports=["polling"], headers={"Origin": origin}, wait_timeout=20)
    try:
        await client.emit("session_request", {"session_id": uuid.uuid4().hex})
        session = (await asyncio.wait_for(replies.get(), 20))["session"]
        got = []
        for question in QUESTIONS[:2]:
            await client.emit("user_uttered", {"message": question})
            got.append(await asyncio.wait_for(replies.get(), 30))
        return {"session": session, "replies": got}
    finally:
        await client.eio.disconnect(abort=True)  # a clean disconnect waits out the long poll


async def _websocket_upgrade(topology: Topology, route: str, origin: str) -> str:
    """The engine.io handshake over polling, then the websocket upgrade probe, through nginx."""
    headers = {"Origin": origin, "Cookie": f"rasa_route={route}"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(f"{topology.public_url}/socket.io/?EIO=4&transport=polling",
                               headers=headers) as response:
            handshake = await response.text()
        sid = json.loads(handshake[handshake.index("{"):])["sid"]
        ws_url = topology.public_url.replace("http://", "ws://")
        async with session.ws_connect(f"{ws_url}/socket.io/?EIO=4&transport=websocket&sid={sid}",
                                      headers=headers, timeout=20) as ws:
            await ws.send_str("2probe")
            message = await ws.receive(timeout=20)
            return message.data


def test_socketio_is_sticky_through_nginx(topology: Topology) -> None:
    """Every request of one socket.io session reaches the same replica (a request that
    crossed replicas would be refused: the other has no such session), for sessions
    spread over both replicas; the websocket upgrade goes through nginx too."""
    origin = f"http://localhost:{topology.ports.nginx}"

    async def run() -> List[Dict[str, Any]]:
        return list(await asyncio.gather(*(_socketio_turns(topology, origin) for _ in range(10))))

    def replicas_seen() -> set:
        lines = (topology.var_dir / "nginx" / "access.log").read_text().splitlines()
        return {port for port in topology.ports.rasa for line in lines
                if "/socket.io/" in line and f"upstream=127.0.0.1:{port}" in line}

    for _ in range(3):  # sessions land at random: until both replicas have had some (almost always once)
        for result in asyncio.run(run()):
            assert all(reply.get("text") for reply in result["replies"]), result
            assert [user for user, _ in stored_turns(topology, result["session"])] == QUESTIONS[:2]
        if replicas_seen() == set(topology.ports.rasa):
            break
    assert asyncio.run(_websocket_upgrade(topology, "route-ws", origin)) == "3probe"
    with pytest.raises(socketio.exceptions.ConnectionError):
        asyncio.run(_socketio_turns(topology, "https://evil.example"))
    assert replicas_seen() == set(topology.ports.rasa)


def test_the_widget_in_chromium_through_nginx(topology: Topology) -> None:
    """The chat page and its widget as a patient opens them, through nginx: the greeting, a
    question answered, and socket.io upgraded to a websocket (nginx logs the 101)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.e2e.test_widget import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: make test installs it (make browser)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"http://localhost:{topology.ports.nginx}/")
            page.get_by_role("button", name=re.compile("Chat with us")).click()
            sync_api.expect(page.locator(".ccw-bot").first).to_contain_text("not a diagnosis", timeout=30_000)
            page.get_by_label("Your message").fill(QUESTIONS[0])
            page.keyboard.press("Enter")
            reply = page.locator(".ccw-bot").nth(1)
            sync_api.expect(reply).to_be_visible(timeout=30_000)
            assert len(reply.inner_text()) > 40  # an answer, not an error line
        finally:
            browser.close()
    log = (topology.var_dir / "nginx" / "access.log").read_text().splitlines()
    assert any('"GET /socket.io/" 101' in line for line in log)


# -- notifications queued while their target is down ---------------------------------------


def test_escalations_are_queued_while_the_target_is_down(topology: Topology) -> None:
    for _ in range(4):
        who = sender("red")
        status, replies, _, _ = say(topology.public_url, who, RED_FLAG)
        assert status == 200
        assert any("escalation" in c for c in customs(replies)), replies
        ESCALATED.append(who)
    time.sleep(3)  # the delivery workers have tried by now
    from common.outbox import Outbox, OutboxSettings

    box = Outbox(OutboxSettings(db_path=topology.var_dir / "unused.db", webhook_url=None,
                                log_path=topology.var_dir / "unused.jsonl", database_url=topology.postgres.url()))
    pending = [row for row in box.pending() if row["conversation_id"] in ESCALATED]
    assert {row["conversation_id"] for row in pending} == set(ESCALATED)
    assert all(row["attempts"] >= 1 and row["last_error"] for row in pending)
    EXPECTED_KEYS.extend(f"{row['conversation_id']}:{row['sign']}" for row in pending)


# -- concurrency -------------------------------------------------------------------------------


async def _conversation(session: aiohttp.ClientSession, url: str, who: str, turns: int,
                        log: List[Tuple[str, str, List[str], str]]) -> None:
    for turn in range(turns):
        message = f"{QUESTIONS[(hash(who) + turn) % len(QUESTIONS)]}"
        async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": who, "message": message},
                                timeout=aiohttp.ClientTimeout(total=120)) as response:
            assert response.status == 200, await response.text()
            replies = await response.json()
            served_by = response.headers.get("X-Served-By", "")
        assert replies and all(r.get("recipient_id") == who for r in replies), (who, replies)
        log.append((who, message, texts(replies), served_by))


def test_fifty_concurrent_conversations_over_both_replicas(topology: Topology) -> None:
    """50 patients at once, 3 turns each: each gets their own replies, in order, and the
    tracker store holds each conversation exactly as it happened."""
    who = [sender("c") for _ in range(50)]
    log: List[Tuple[str, str, List[str], str]] = []

    async def run() -> None:
        # No cookie jar: each request is spread on its own, so a conversation hops replicas.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            await asyncio.gather(*(_conversation(session, topology.public_url, w, 3, log) for w in who))

    asyncio.run(run())
    assert len(log) == 150
    assert {served for *_, served in log} == {f"127.0.0.1:{p}" for p in topology.ports.rasa}
    for w in who:
        mine = [(message, replies) for (x, message, replies, _) in log if x == w]
        assert stored_turns(topology, w) == mine, w
        events = stored_events(topology, w)
        stamps = [(e["event"], e.get("timestamp"), e.get("name"), e.get("text")) for e in events]
        assert len(stamps) == len(set(stamps)), f"duplicated events in {w}"
        hops = {served for (x, *_, served) in log if x == w}
        del hops  # conversations may or may not hop; the lock keeps each turn whole either way
    hopping = sum(1 for w in who if len({s for (x, *_, s) in log if x == w}) > 1)
    assert hopping > 0  # some conversations really were served by both replicas


def test_no_patient_text_in_the_logs(topology: Topology) -> None:
    marker = f"zq{uuid.uuid4().hex[:10]}"
    status, _, _, _ = say(topology.public_url, sender(), f"my name is {marker} and my back hurts")
    assert status == 200
    time.sleep(1)
    for log in list(topology.log_dir.glob("*.log")) + list((topology.var_dir / "nginx").glob("*.log")):
        assert marker not in log.read_text(errors="replace"), log.name


# -- the action server down or hung ------------------------------------------------------------


def test_action_server_down_gives_a_visible_reply_within_5_s(topology: Topology) -> None:
    actions = topology.processes["actions"]
    try:
        for mode in ("hung", "killed"):
            if mode == "hung":
                os.killpg(actions.pid, signal.SIGSTOP)
            else:
                os.killpg(actions.pid, signal.SIGCONT)
                topology.stop_process("actions", signal.SIGKILL)
            for message in ("how do I contact the clinic?", "do I need surgery?"):
                status, replies, _, elapsed = say(topology.public_url, sender("a"), message)
                assert status == 200 and elapsed < 5, (mode, message, elapsed)
                assert any(c.get("error") == "action_server_unavailable" for c in customs(replies)), replies
                assert texts(replies), replies
            status, replies, _, elapsed = say(topology.public_url, sender("a"), RED_FLAG)
            assert status == 200 and elapsed < 5
            assert "emergency" in " ".join(texts(replies)).lower()
            assert any("escalation" in c for c in customs(replies)), replies
            # ...and the FAQ answers, domain responses, still come as usual.
            status, replies, _, _ = say(topology.public_url, sender("a"), QUESTIONS[0])
            assert status == 200 and texts(replies)
            assert not any(c.get("error") for c in customs(replies))
    finally:
        if "actions" in topology.processes:
            os.killpg(topology.processes["actions"].pid, signal.SIGCONT)
        else:
            topology.start_actions()
    time.sleep(4)  # ACTION_SERVER_RETRY_AFTER
    status, replies, _, _ = say(topology.public_url, sender("a"), "how do I contact the clinic?")
    assert status == 200 and not any(c.get("error") for c in customs(replies)), replies


# -- Redis down --------------------------------------------------------------------------------


def test_redis_down_is_a_clear_503_and_recovers(topology: Topology) -> None:
    who = sender("r")
    assert say(topology.public_url, who, QUESTIONS[0])[0] == 200
    topology.redis.stop()
    try:
        for _ in range(2):
            status, body, headers, elapsed = say(topology.public_url, who, QUESTIONS[1], timeout=30)
            assert status == 503, body
            assert body["reason"] == "lock_store_unavailable" and body["retry"] is True
            assert headers.get("Retry-After")
    finally:
        topology.redis.start()
    status, replies, _, _ = say(topology.public_url, who, QUESTIONS[1])
    assert status == 200 and texts(replies)
    assert [user for user, _ in stored_turns(topology, who)] == [QUESTIONS[0], QUESTIONS[1]]


def test_redis_hung_is_a_503_not_a_hang(topology: Topology) -> None:
    pid = topology.redis.pid()
    assert pid
    os.kill(pid, signal.SIGSTOP)
    try:
        status, body, _, elapsed = say(topology.public_url, sender("r"), QUESTIONS[0], timeout=30)
        assert status == 503 and body["reason"] == "lock_store_unavailable", body
    finally:
        os.kill(pid, signal.SIGCONT)
    assert say(topology.public_url, sender("r"), QUESTIONS[0])[0] == 200


# -- PostgreSQL restarted, or down for longer than the retries ----------------------------------


async def _patient(session: aiohttp.ClientSession, url: str, who: str, stop_at: float,
                   sent: Dict[str, List[Tuple[str, List[str]]]], refused: List[str]) -> None:
    """Sends numbered messages until `stop_at`; a 503 is answered by sending the same one again."""
    turn = 0
    while time.monotonic() < stop_at:
        message = QUESTIONS[turn % len(QUESTIONS)]
        for _ in range(60):
            async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": who, "message": message},
                                    timeout=aiohttp.ClientTimeout(total=60)) as response:
                if response.status == 503:
                    refused.append(who)
                    await asyncio.sleep(1)
                    continue
                assert response.status == 200, await response.text()
                sent.setdefault(who, []).append((message, texts(await response.json())))
                break
        else:
            raise AssertionError(f"{who}: refused for a minute")
        turn += 1


def _traffic_during(topology: Topology, fault: Any, seconds: float, patients: int = 8
                    ) -> Tuple[Dict[str, List[Tuple[str, List[str]]]], List[str]]:
    sent: Dict[str, List[Tuple[str, List[str]]]] = {}
    refused: List[str] = []
    who = [sender("db") for _ in range(patients)]

    async def run() -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            stop_at = time.monotonic() + seconds
            tasks = [asyncio.create_task(_patient(session, topology.public_url, w, stop_at, sent, refused))
                     for w in who]
            await asyncio.sleep(3)
            await asyncio.get_running_loop().run_in_executor(None, fault)
            await asyncio.gather(*tasks)

    asyncio.run(run())
    for w in who:
        assert stored_turns(topology, w) == sent[w], w  # every turn once, in order, with its replies
    return sent, refused


def test_postgres_restart_during_traffic_loses_nothing(topology: Topology) -> None:
    sent, _ = _traffic_during(topology, topology.postgres.restart, seconds=15)
    assert sum(len(turns) for turns in sent.values()) > 16


def test_postgres_down_longer_than_the_retries_fails_loudly_and_loses_nothing(topology: Topology) -> None:
    """Down for 15 s, twice the retry budget: turns are refused with a 503 (stock Rasa would
    answer them from an empty tracker and drop their events), resent, and all stored once."""
    def outage() -> None:
        topology.postgres.stop()
        time.sleep(15)
        topology.postgres.start()

    sent, refused = _traffic_during(topology, outage, seconds=30)
    assert refused, "no turn was refused: the outage was not felt"
    # Context survived: each conversation's stored history is the whole of it.
    for w, turns in sent.items():
        assert [u for u, _ in stored_turns(topology, w)] == [m for m, _ in turns]


# -- a replica killed mid-conversation ---------------------------------------------------------------


def test_a_replica_killed_mid_turn(topology: Topology) -> None:
    """SIGKILL the replica serving a patient in the middle of a checklist turn (it is waiting
    on the action server); the client gets a JSON error and sends the answer again; the other
    replica takes it once the dead replica's lock ticket has expired, carries on the
    checklist where it was, and the answer is stored once."""
    who = sender("k")
    cookie = {"Cookie": f"rasa_route={who}"}  # sticky, so we know which replica serves it
    status, replies, headers, _ = say(topology.public_url, who, "do I need surgery?", headers=cookie)
    assert status == 200
    status, replies, headers, _ = say(topology.public_url, who, "no", headers=cookie)
    assert status == 200 and "3 months" in " ".join(texts(replies)), replies
    victim = topology.ports.rasa.index(int(headers["X-Served-By"].split(", ")[-1].rsplit(":", 1)[1]))
    answer = "yes, for more than three months"

    actions = topology.processes["actions"]
    os.killpg(actions.pid, signal.SIGSTOP)  # the turn now waits on the action server...
    result: Dict[str, Any] = {}
    turn = threading.Thread(target=lambda: result.update(
        zip(("status", "body", "headers", "elapsed"), say(topology.public_url, who, answer, headers=cookie))))
    turn.start()
    try:
        time.sleep(1.5)
        topology.kill_replica(victim)  # ...and its replica dies in the middle of it
    finally:
        os.killpg(actions.pid, signal.SIGCONT)
    turn.join(60)
    assert result["status"] in (502, 503) and result["body"]["retry"] is True, result  # nginx's JSON error
    assert [u for u, _ in stored_turns(topology, who)] == ["do I need surgery?", "no"]  # nothing half-stored

    status, replies, headers, _ = say(topology.public_url, who, answer, headers=cookie, timeout=90)
    assert status == 200, replies
    # nginx may try the dead replica first (connection refused), then the survivor.
    assert headers["X-Served-By"].split(", ")[-1] == f"127.0.0.1:{topology.ports.rasa[1 - victim]}"
    assert "sudden, severe attack" in " ".join(texts(replies)), replies  # the checklist's next question
    assert [u for u, _ in stored_turns(topology, who)] == ["do I need surgery?", "no", answer]
    # And new conversations keep going, on the survivor.
    assert say(topology.public_url, sender("k"), QUESTIONS[2])[0] == 200


# -- the notification target back after minutes -------------------------------------------------------


def test_every_escalation_notification_arrives_exactly_once(topology: Topology) -> None:
    assert ESCALATED, "test_escalations_are_queued_while_the_target_is_down did not run"
    down_for = time.monotonic() - topology.started_at  # type: ignore[attr-defined]
    if down_for < TARGET_DOWN_FOR_S:
        time.sleep(TARGET_DOWN_FOR_S - down_for)
    receiver = WebhookReceiver(port=topology.webhook_port)  # type: ignore[attr-defined]
    receiver.start()
    try:
        expected = set(EXPECTED_KEYS)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not expected <= set(receiver.keys()):
            time.sleep(0.5)
        time.sleep(8)  # more than the longest wait between tries: a duplicate would have come
        keys = [key for key in receiver.keys() if key.rsplit(":", 1)[0] in ESCALATED]
        assert sorted(keys) == sorted(expected), keys
    finally:
        receiver.stop()
