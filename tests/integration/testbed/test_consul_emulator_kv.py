"""Consul KV as kv.mdx documents it and agent/kvs_endpoint.go + agent/consul/state/kvs.go do it:
recurse, keys/separator, raw, cas (0 = create only), flags, locks (LockIndex, Session),
Create/ModifyIndex, X-Consul-Index, blocking queries on a key and on a prefix. Every test here
runs unchanged against a real Consul (CONSUL_HTTP_ADDR); each works under its own prefix.
"""

import json
import threading
import time
import uuid

import pytest


@pytest.fixture
def prefix(consul):
    """A fresh key prefix, removed afterwards (a real Consul is shared)."""
    name = "edgex-test/%s/" % uuid.uuid4().hex[:8]
    yield name
    consul.answer("DELETE", "/v1/kv/%s?recurse" % name)


def kv_get(consul, path):
    status, headers, raw = consul.answer("GET", "/v1/kv/" + path)
    return status, headers, (json.loads(raw) if raw and headers.get("Content-Type") == "application/json" else raw)


def put(consul, key, value, query=""):
    status, _headers, raw = consul.answer("PUT", "/v1/kv/%s%s" % (key, query), value.encode())
    assert status == 200, raw
    return json.loads(raw)


def test_entry_shape_indexes_and_index_header(consul, prefix):
    assert put(consul, prefix + "a", "1") is True
    status, headers, entries = kv_get(consul, prefix + "a")
    assert status == 200
    entry = entries[0]
    assert list(entry) == ["LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"]  # no Session
    assert (entry["Key"], entry["Flags"], entry["LockIndex"], entry["Value"]) == (prefix + "a", 0, 0, "MQ==")
    assert entry["CreateIndex"] == entry["ModifyIndex"] == int(headers["X-Consul-Index"])
    put(consul, prefix + "a", "2")
    _s, headers, entries = kv_get(consul, prefix + "a")
    assert entries[0]["CreateIndex"] == entry["CreateIndex"] < entries[0]["ModifyIndex"]
    assert int(headers["X-Consul-Index"]) == entries[0]["ModifyIndex"]


def test_writing_the_same_value_changes_nothing(consul, prefix):
    put(consul, prefix + "a", "1")
    before = kv_get(consul, prefix + "a")[2][0]
    put(consul, prefix + "a", "1")
    assert kv_get(consul, prefix + "a")[2][0]["ModifyIndex"] == before["ModifyIndex"]


def test_flags_are_set_and_a_put_without_flags_resets_them(consul, prefix):
    put(consul, prefix + "a", "1", "?flags=42")
    assert kv_get(consul, prefix + "a")[2][0]["Flags"] == 42
    put(consul, prefix + "a", "1")
    assert kv_get(consul, prefix + "a")[2][0]["Flags"] == 0


def test_missing_keys_and_missing_key_names(consul, prefix):
    status, headers, body = kv_get(consul, prefix + "none")
    assert (status, body) == (404, b"") and int(headers["X-Consul-Index"]) > 0
    assert kv_get(consul, "")[0] == 400  # GET /v1/kv/ without ?recurse: "Missing key name"
    status, _h, raw = consul.answer("PUT", "/v1/kv/", b"x")
    assert (status, raw) == (400, b"Missing key name")


def test_raw_answers_the_value_as_is(consul, prefix):
    put(consul, prefix + "bin", "<b>DEBUG</b>")
    status, headers, raw = consul.answer("GET", "/v1/kv/%sbin?raw" % prefix)
    assert (status, raw) == (200, b"<b>DEBUG</b>")
    assert headers["Content-Type"] == "text/plain"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Content-Security-Policy"] == "sandbox"


def test_recurse_keys_and_separator(consul, prefix):
    for key in ("core-data/Writable/LogLevel", "core-data/Service/Port", "core-data/Service/Host", "top"):
        put(consul, prefix + key, "v")
    status, headers, entries = kv_get(consul, prefix + "?recurse")
    keys = ("core-data/Service/Host", "core-data/Service/Port", "core-data/Writable/LogLevel", "top")
    assert [e["Key"] for e in entries] == [prefix + k for k in keys]
    assert int(headers["X-Consul-Index"]) == max(e["ModifyIndex"] for e in entries)
    assert kv_get(consul, prefix + "?keys")[2] == [e["Key"] for e in entries]
    assert kv_get(consul, prefix + "?keys&separator=/")[2] == [prefix + "core-data/", prefix + "top"]
    assert kv_get(consul, prefix + "core-data/?keys&separator=/")[2] == [
        prefix + "core-data/Service/", prefix + "core-data/Writable/"]
    assert kv_get(consul, prefix + "core-data/?keys&seperator=/")[2] == [  # Consul's historic spelling
        prefix + "core-data/Service/", prefix + "core-data/Writable/"]
    assert kv_get(consul, prefix + "nothing/?recurse")[0] == 404
    assert kv_get(consul, prefix + "nothing/?keys")[0] == 404
    status, _h, keys = kv_get(consul, "?keys")  # the root is never 404
    assert status == 200 and isinstance(keys, list)


def test_cas_zero_creates_only_and_cas_n_needs_the_modify_index(consul, prefix):
    assert put(consul, prefix + "a", "1", "?cas=0") is True
    assert put(consul, prefix + "a", "2", "?cas=0") is False
    index = kv_get(consul, prefix + "a")[2][0]["ModifyIndex"]
    assert put(consul, prefix + "b", "1", "?cas=%d" % index) is False  # b does not exist
    assert put(consul, prefix + "a", "3", "?cas=%d" % (index + 1000)) is False
    assert put(consul, prefix + "a", "3", "?cas=%d" % index) is True
    assert put(consul, prefix + "a", "4", "?cas=%d" % index) is False
    assert kv_get(consul, prefix + "a?raw")[2] == b"3"


def test_delete_cas_and_recurse(consul, prefix):
    for key in ("x/1", "x/2", "y"):
        put(consul, prefix + key, "v")
    index = kv_get(consul, prefix + "y")[2][0]["ModifyIndex"]
    assert consul.answer("DELETE", "/v1/kv/%sy?cas=%d" % (prefix, index + 1000))[2] == b"false"
    assert consul.answer("DELETE", "/v1/kv/%sy?cas=%d" % (prefix, index))[2] == b"true"
    # kvsDeleteCASTxn: deleting what is not there with cas "succeeds"
    assert consul.answer("DELETE", "/v1/kv/%sy?cas=%d" % (prefix, index))[2] == b"true"
    assert consul.answer("DELETE", "/v1/kv/%sx/1" % prefix)[2] == b"true"
    assert consul.answer("DELETE", "/v1/kv/%sx/1" % prefix)[2] == b"true"  # already gone: still true
    put(consul, prefix + "x/3", "v")
    assert consul.answer("DELETE", "/v1/kv/%sx/?recurse" % prefix)[2] == b"true"
    assert kv_get(consul, prefix + "?keys")[0] == 404  # nothing left under the prefix


def test_conflicting_flags_are_400(consul, prefix):
    status, _h, raw = consul.answer("PUT", "/v1/kv/%sa?cas=0&acquire=x" % prefix, b"v")
    assert status == 400 and raw.startswith(b"Conflicting flags: ")
    status, _h, raw = consul.answer("DELETE", "/v1/kv/%sa?cas=1&recurse" % prefix)
    assert status == 400 and raw.startswith(b"Conflicting flags: ")


def test_bad_numbers_and_large_values(consul, prefix):
    status, _h, raw = consul.answer("PUT", "/v1/kv/%sa?flags=x" % prefix, b"v")
    assert status == 500 and b"strconv.ParseUint" in raw
    status, _h, raw = consul.answer("PUT", "/v1/kv/%sbig" % prefix, b"x" * (512 * 1024 + 1))
    assert status == 413 and raw.startswith(b"Request body(524289 bytes) too large")


def test_locks_count_in_lock_index_and_show_the_session(consul, prefix):
    session = json.loads(consul.answer("PUT", "/v1/session/create", {"LockDelay": "0s"})[2])["ID"]
    other = json.loads(consul.answer("PUT", "/v1/session/create", {"LockDelay": "0s"})[2])["ID"]
    try:
        assert put(consul, prefix + "leader", "me", "?acquire=" + session) is True
        entry = kv_get(consul, prefix + "leader")[2][0]
        assert (entry["LockIndex"], entry["Session"]) == (1, session)
        assert put(consul, prefix + "leader", "you", "?acquire=" + other) is False  # held
        assert put(consul, prefix + "leader", "me2", "?acquire=" + session) is True  # holder updates
        assert kv_get(consul, prefix + "leader")[2][0]["LockIndex"] == 1
        assert put(consul, prefix + "leader", "me3", "?release=" + other) is False
        assert put(consul, prefix + "leader", "me3", "?release=" + session) is True
        entry = kv_get(consul, prefix + "leader")[2][0]
        assert "Session" not in entry and entry["LockIndex"] == 1
        assert put(consul, prefix + "leader", "you", "?acquire=" + other) is True
        assert kv_get(consul, prefix + "leader")[2][0]["LockIndex"] == 2
        consul.answer("PUT", "/v1/session/destroy/" + other)  # releases what it held
        assert "Session" not in kv_get(consul, prefix + "leader")[2][0]
        status, _h, raw = consul.answer("PUT", "/v1/kv/%sleader?acquire=%s" % (prefix, uuid.uuid4()), b"v")
        assert status == 500 and b"invalid session" in raw
    finally:
        for ident in (session, other):
            consul.answer("PUT", "/v1/session/destroy/" + ident)


def test_a_destroyed_sessions_lock_delay_keeps_the_key_unlockable(consul, prefix):
    holder = json.loads(consul.answer("PUT", "/v1/session/create", {"LockDelay": "15s"})[2])["ID"]
    other = json.loads(consul.answer("PUT", "/v1/session/create", {})[2])["ID"]
    try:
        assert put(consul, prefix + "lock", "v", "?acquire=" + holder) is True
        consul.answer("PUT", "/v1/session/destroy/" + holder)
        assert put(consul, prefix + "lock", "v", "?acquire=" + other) is False  # within the lock-delay
    finally:
        consul.answer("PUT", "/v1/session/destroy/" + other)


def blocking_get(consul, path, index, wait):
    started = time.time()
    status, headers, raw = consul.answer("GET", "/v1/kv/%s%sindex=%s&wait=%s"
                                         % (path, "&" if "?" in path else "?", index, wait), timeout=30)
    return status, int(headers["X-Consul-Index"]), time.time() - started


def later(action, delay=0.5):
    thread = threading.Thread(target=lambda: (time.sleep(delay), action()))
    thread.start()
    return thread


def test_blocking_on_a_key_wakes_for_that_key_only(consul, prefix):
    put(consul, prefix + "watched", "1")
    put(consul, prefix + "other", "1")
    index = kv_get(consul, prefix + "watched")[2][0]["ModifyIndex"]
    thread = later(lambda: put(consul, prefix + "other", "2"))
    status, new_index, elapsed = blocking_get(consul, prefix + "watched", index, "1s")
    thread.join()
    assert status == 200 and new_index == index and elapsed >= 0.9  # another key does not wake it
    thread = later(lambda: put(consul, prefix + "watched", "2"))
    status, new_index, elapsed = blocking_get(consul, prefix + "watched", index, "20s")
    thread.join()
    assert new_index > index and elapsed < 15


def test_blocking_on_a_prefix_wakes_for_any_change_under_it_deletes_included(consul, prefix):
    put(consul, prefix + "app/a", "1")
    put(consul, prefix + "elsewhere", "1")
    status, headers, _entries = kv_get(consul, prefix + "app/?recurse")
    index = int(headers["X-Consul-Index"])
    thread = later(lambda: put(consul, prefix + "elsewhere", "2"))
    _status, new_index, elapsed = blocking_get(consul, prefix + "app/?recurse", index, "1s")
    thread.join()
    assert new_index == index and elapsed >= 0.9
    thread = later(lambda: put(consul, prefix + "app/b", "1"))
    _status, new_index, elapsed = blocking_get(consul, prefix + "app/?recurse", index, "20s")
    thread.join()
    assert new_index > index and elapsed < 15
    thread = later(lambda: consul.answer("DELETE", "/v1/kv/%sapp/a" % prefix))
    status, after_delete, elapsed = blocking_get(consul, prefix + "app/?keys", new_index, "20s")
    thread.join()
    assert status == 200 and after_delete > new_index and elapsed < 15


def test_invalid_wait_and_index_are_400(consul, prefix):
    assert consul.answer("GET", "/v1/kv/%sa?index=1&wait=5" % prefix)[:1] == (400,)  # wait needs a unit
    assert consul.answer("GET", "/v1/kv/%sa?index=x" % prefix)[0] == 400
