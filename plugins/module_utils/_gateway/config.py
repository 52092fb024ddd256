# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""EdgeX configuration in the registry's key/value store, and what a change to it affects.

Where it lives, as go-mod-bootstrap reads it:
  2.x  edgex/<core|appservices|devices|security>/2.0/<service>/...        (Consul)
  3.x  edgex/v3/<service>/..., common configuration under
       edgex/v3/core-common-config-bootstrapper/<all-services|app-services|device-services>/...
  4.x  edgex/v4/... laid out as 3.x (core-keeper; Consul where it is used instead)
One key per leaf, every value a string, as go-mod-configuration flattens a configuration (lists
as keys 0, 1, ...). A 3.x/4.x service merges all-services, then its type's section (app-*:
app-services, device-*: device-services), then its private configuration, later winning. It
watches the Writable sections and applies them live; everything else is read at start only.

So the effect of a change is computed, not guessed: for every running instance the change
applies to, the configuration a restart would give (the stored layers merged) is compared
with the effective configuration the instance reports (GET /api/v<2|3>/config). Keys outside
Writable that differ need a restart of that instance; Writable keys that differ are on their
way live. A private key that overrides a common one makes the common change moot for that
service, and it is not restarted. Comparing with what runs, not only with what this run wrote,
also makes a re-run (a failed run, a second gateway sharing one Consul) restart what still needs
it, and proves afterwards that the running services took the change.
"""

from __future__ import annotations

import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import List, Optional

from .._errors import EdgeXError, RegistryAuthError
from .._names import validate_name
from .._net.dial import connect
from .._net.http import AnswerError, http_get
from .._ordering import start_levels
from .._registry.keeper import KEY_ALLOWED
from .._registry.model import KVEntry
from .addresses import Unreachable, probe_target, reach

BOOTSTRAPPER = "core-common-config-bootstrapper"
COMMON_SECTIONS = ("all-services", "app-services", "device-services")
WRITABLE = "Writable"
ALL = "all"
RELEASES = ("auto", "2", "3", "4")
# Where to look when the release is not given: the newest layout first, as an upgraded
# deployment keeps the older one's keys behind.
DETECTION_ORDER = {"consul": (4, 3, 2), "keeper": (4,)}
REGISTRY_LABELS = {"consul": "Consul", "keeper": "core-keeper"}
# A /config answer is a service's whole configuration: tens of kB; this bounds a wrong peer.
MAX_CONFIG = 4 * 1024 * 1024
# Go's strconv.ParseBool: what a bool field accepts.
GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class ConfigError(EdgeXError):
    """A request edgex_config cannot carry out as asked; the message says why and what to do."""


class ConflictError(ConfigError):
    """A check-and-set write lost the race: someone changed the key after it was read."""

    def __init__(self, message, written):
        super(ConflictError, self).__init__(message)
        self.written = written


# -- values and keys, as EdgeX stores them ----------------------------------------------------


def encode(value):
    """A leaf as go-mod-configuration stores it: Go's strconv forms, strings as they are, nil as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # strconv.FormatFloat(v, 'f', -1, 64): the shortest decimal that reads back, never an exponent
        text = format(Decimal(repr(value)), "f")
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, str):
        return value
    raise ConfigError("a value of type %s cannot be stored: use a string, number, boolean, list or mapping"
                      % type(value).__name__)


def validate_relative_key(key):
    """A key below a service's folder: segments of the characters EdgeX's keeper allows, none
    of them empty, '.' or '..' (they would address another folder)."""
    segments = key.split("/")
    if not KEY_ALLOWED.match(key) or any(s in ("", ".", "..") for s in segments):
        raise ConfigError("invalid configuration key %r: segments of %s, none empty, '.' or '..'"
                          % (key, KEY_ALLOWED.pattern))
    return key


def flatten(settings):
    """(keys, list folders) of a nested mapping: {"Writable/LogLevel": "DEBUG", ...} with every
    value encoded, and the keys of the lists in it (their items are keys 0, 1, ...). A mapping key
    may itself hold '/' ({"Writable/LogLevel": DEBUG} is the same as the nested form)."""
    if not isinstance(settings, dict):
        raise ConfigError("settings must be a mapping of keys to values, not a %s" % type(settings).__name__)
    keys, lists = {}, []

    def walk(node, path):
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, "%s/%s" % (path, name) if path is not None else str(name))
        elif isinstance(node, (list, tuple)):
            lists.append(validate_relative_key(path))
            for index, value in enumerate(node):
                walk(value, "%s/%d" % (path, index))
        else:
            keys[validate_relative_key(path)] = encode(node)

    walk(settings, None)
    return keys, lists


def is_writable(key):
    return key == WRITABLE or key.startswith(WRITABLE + "/")


def unflatten(pairs):
    """{"a/b": v} -> {"a": {"b": v}}; where a key is both a leaf and a folder, the folder wins."""
    tree = {}
    for path in sorted(pairs):
        node = tree
        parts = path.split("/")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = pairs[path]
    return tree


def flatten_effective(config, prefix=""):
    """A service's reported configuration as {key: typed leaf}; lists as keys 0, 1, ... as stored."""
    leaves = {}
    items = config.items() if isinstance(config, dict) else enumerate(config)
    for name, value in items:
        path = "%s/%s" % (prefix, name) if prefix else str(name)
        if isinstance(value, (dict, list)):
            leaves.update(flatten_effective(value, path))
        else:
            leaves[path] = value
    return leaves


def same_value(stored, running):
    """Does the stored string decode to the value the service reports (as its field's type reads it)?"""
    if stored is None:
        return running is None
    if isinstance(running, bool):
        return (running and stored in GO_TRUE) or (not running and stored in GO_FALSE)
    if isinstance(running, (int, float)):
        try:
            return float(stored) == float(running)
        except ValueError:
            return False
    if running is None:
        return stored == ""
    return stored == str(running)


# -- where a release keeps it ---------------------------------------------------------------


def v2_class(service):
    """go-mod-core-contracts v2's config stem of a service key."""
    for prefix, stem in (("app-", "appservices"), ("device-", "devices"), ("security-", "security")):
        if service.startswith(prefix):
            return stem
    return "core"


def type_section(service):
    """The common section a 3.x/4.x service reads after all-services, if any."""
    if service.startswith("app-"):
        return "app-services"
    if service.startswith("device-"):
        return "device-services"
    return None


class Layout(object):
    """Key/value layout of one EdgeX release (2, 3 or 4)."""

    _V2_SERVICE = re.compile(r"^edgex/(core|appservices|devices|security)/2\.0/([^/]+)/")

    def __init__(self, release):
        self.release = int(release)
        self.stem = None if self.release == 2 else "edgex/v%d" % self.release
        self.api_base = "/api/v2" if self.release == 2 else "/api/v3"

    def service_folder(self, service):
        if self.release == 2:
            return "edgex/%s/2.0/%s" % (v2_class(service), service)
        return "%s/%s" % (self.stem, service)

    def common_folder(self, section):
        if self.release == 2:
            raise ConfigError("EdgeX 2.x has no common configuration (%s is a 3.x/4.x section): set the key in "
                              "each service's own configuration" % section)
        return "%s/%s/%s" % (self.stem, BOOTSTRAPPER, section)

    def layers(self, service):
        """The folders a service merges, in order (later wins)."""
        if self.release == 2:
            return [self.service_folder(service)]
        sections = ["all-services"] + ([type_section(service)] if type_section(service) else [])
        return [self.common_folder(s) for s in sections] + [self.service_folder(service)]

    def services_with_configuration(self, entries):
        """Service keys that have their own configuration in the store (EdgeX services that use it)."""
        found = set()
        for key in entries:
            if self.release == 2:
                matched = self._V2_SERVICE.match(key)
                name = matched.group(2) if matched else None
            else:
                rest = key[len(self.stem) + 1:] if key.startswith(self.stem + "/") else ""
                name = rest.split("/", 1)[0] if "/" in rest else None
            if name and name != BOOTSTRAPPER and _plain(name):
                found.add(name)
        return sorted(found)

    def readers_of(self, section, services):
        """Which of ``services`` read a common section."""
        if section == "all-services":
            return list(services)
        return [s for s in services if type_section(s) == section]


def _plain(name):
    """Is a key segment a service key we may name (a hostile key never reaches a message or a URL)?"""
    try:
        validate_name(name)
    except EdgeXError:
        return False
    return True


def below(entries, folder):
    """{key relative to folder: value} of the entries under ``folder/``."""
    start = len(folder) + 1
    return {key[start:]: entry.value for key, entry in entries.items() if key.startswith(folder + "/")}


def merged(layout, service, entries):
    """What a (re)starting ``service`` reads: its layers merged, {relative key: value}."""
    result = {}
    for folder in layout.layers(service):
        result.update(below(entries, folder))
    return result


@dataclass
class Target:
    """One ``name`` of the task: a service's own configuration or a common section."""

    name: str
    kind: str  # service | common
    release: int
    folder: str

    @property
    def layout(self):
        return Layout(self.release)


def resolve_targets(names, entries, registry_type, release="auto"):
    """The Targets of ``names`` (service keys or common sections). With release "auto" each is
    looked for newest layout first; a name found nowhere raises, saying where it looked and which
    services have a configuration."""
    if release not in RELEASES:
        raise ConfigError("release must be one of %s, not %r" % (", ".join(RELEASES), release))
    candidates = DETECTION_ORDER[registry_type] if release == "auto" else (int(release),)
    targets, looked = [], {}
    for name in dict.fromkeys(names):
        kind = "common" if name in COMMON_SECTIONS else "service"
        if kind == "service":
            validate_name(name)
            if name == BOOTSTRAPPER:
                raise ConfigError("%s is the job that pushes the common configuration; name a section (%s) instead"
                                  % (BOOTSTRAPPER, ", ".join(COMMON_SECTIONS)))
        if release != "auto":
            layout = Layout(release)
            folder = layout.common_folder(name) if kind == "common" else layout.service_folder(name)
            targets.append(Target(name, kind, layout.release, folder))
            continue
        places = [(major, Layout(major).common_folder(name) if kind == "common" else Layout(major).service_folder(name))
                  for major in candidates if kind == "service" or major != 2]
        found = [(major, folder) for major, folder in places if any(key.startswith(folder + "/") for key in entries)]
        if found:
            targets.append(Target(name, kind, found[0][0], found[0][1]))
        else:
            looked[name] = [folder for _major, folder in places]
    if looked:
        raise ConfigError(
            "no configuration for %s in %s (looked under %s): a service writes its own on its first start with "
            "this configuration provider; set release to write it anyway. Services with a configuration there: %s"
            % (", ".join(looked), REGISTRY_LABELS.get(registry_type, registry_type),
               ", ".join("%s/" % f for folders in looked.values() for f in folders),
               ", ".join(configured_services(entries, candidates)) or "none"))
    return targets


def configured_services(entries, releases):
    """Every service key with its own configuration under the layouts of ``releases``."""
    return sorted(set(s for major in releases for s in Layout(major).services_with_configuration(entries)))


# -- a change, key by key -------------------------------------------------------------------


@dataclass
class Change:
    key: str  # full key
    target: str  # the name it belongs to
    relative: str  # below the target's folder
    before: Optional[str]  # None: absent
    after: Optional[str]  # None: removed
    index: Optional[int]  # the version read (Consul ModifyIndex); 0: it did not exist

    def to_dict(self):
        return {"key": self.key, "name": self.target, "before": self.before, "after": self.after}


def plan_changes(target, settings, state, entries):
    """The Changes that make ``target`` hold ``settings`` (state present) or not hold the keys it
    names (absent: each key and everything below it). Only what differs changes."""
    wanted, lists = flatten(settings)
    stored = {key: entry for key, entry in entries.items() if key.startswith(target.folder + "/")}
    by_lower = {}
    for key in stored:
        by_lower.setdefault(key.lower(), key)
    changes = []
    if state == "absent":
        for relative in sorted(set(wanted) | set(lists)):
            key = "%s/%s" % (target.folder, relative)
            _case_check(key, stored, by_lower)
            for found in sorted(k for k in stored if k == key or k.startswith(key + "/")):
                changes.append(Change(found, target.name, found[len(target.folder) + 1:], stored[found].value, None,
                                      stored[found].index))
        return _unique(changes)
    for relative, value in sorted(wanted.items()):
        key = "%s/%s" % (target.folder, relative)
        _case_check(key, stored, by_lower)
        _shape_check(key, relative, stored)
        current = stored.get(key)
        if current is None or current.value != value:
            changes.append(Change(key, target.name, relative, None if current is None else current.value, value,
                                  0 if current is None else current.index))
    # A list given whole replaces the stored one: items past its end go.
    for relative in lists:
        folder = "%s/%s/" % (target.folder, relative)
        for key in sorted(k for k in stored if k.startswith(folder) and k[len(target.folder) + 1:] not in wanted):
            if not any(key.startswith("%s/%s/" % (target.folder, w)) for w in wanted):
                changes.append(Change(key, target.name, key[len(target.folder) + 1:], stored[key].value, None,
                                      stored[key].index))
    return _unique(changes)


def _unique(changes):
    seen, result = set(), []
    for change in changes:
        if change.key not in seen:
            seen.add(change.key)
            result.append(change)
    return result


def _case_check(key, stored, by_lower):
    other = by_lower.get(key.lower())
    if other is not None and other != key:
        raise ConfigError("%s differs only in case from the stored %s; EdgeX matches configuration keys regardless "
                          "of case, so both would apply: use %s" % (key, other, other))


def _shape_check(key, relative, stored):
    """A leaf must not replace a section, nor be put below a leaf: EdgeX could not decode either."""
    if any(k.startswith(key + "/") for k in stored):
        raise ConfigError("%s is a section of the stored configuration (it holds %s/...): set the keys below it, "
                          "not the section itself" % (relative, relative))
    parts = key.split("/")
    for end in range(len(parts) - 1, 0, -1):
        if "/".join(parts[:end]) in stored:
            raise ConfigError("%s is a value in the stored configuration, not a section: %s cannot go below it"
                              % ("/".join(parts[:end]), relative))


def after_changes(entries, changes):
    """The entries as they are once ``changes`` are applied (what check mode reasons about)."""
    result = dict(entries)
    for change in changes:
        if change.after is None:
            result.pop(change.key, None)
        else:
            result[change.key] = KVEntry(change.after, None)
    return result


def apply_changes(registry, changes, registry_label):
    """Write ``changes`` in order, each a check-and-set on the version read where the registry has
    one. A lost race raises ConflictError naming the key; what was written before it stays."""
    written = []
    for change in changes:
        index = change.index if registry.kv_check_and_set else None
        if change.after is None:
            done = registry.kv_delete(change.key, index)
        else:
            done = registry.kv_write(change.key, change.after, index)
        if not done:
            seen = "did not exist" if change.index == 0 else "had ModifyIndex %s" % change.index
            raise ConflictError(
                "check-and-set failed on %s: it changed in %s after this task read it (it %s then); another writer "
                "got there first, and nothing of theirs was overwritten. %s Run the task again: it reads the "
                "current values and converges." % (
                    change.key, registry_label, seen,
                    "Written before the conflict: %s." % ", ".join(c.key for c in written) if written
                    else "Nothing was written."), written)
        written.append(change)
    return written


# -- what runs -------------------------------------------------------------------------------


def read_running(service, api_base, timeout):
    """(configuration dict, None) as the service reports it (GET <api>/config, where the address
    rule of the health probes reaches it), or (None, why not). One deadline covers the name lookup,
    the connect and the whole answer."""
    if not service.address or not service.port:
        return None, "no address and port to ask it"
    path = api_base + "/config"
    own_api = re.match(r"^(.*/api/v\d+)/ping$", service.health_path or "")
    if own_api:  # the manifest's health path names the service's API (2.x: /api/v2)
        path = own_api.group(1) + "/config"
    deadline = time.monotonic() + timeout
    try:
        endpoint = reach(service, deadline, timeout)
    except Unreachable as exc:
        return None, "GET %s: %s" % (path, exc)
    url = "http://%s%s" % (probe_target(endpoint.address, endpoint.port), path)
    sock = None
    try:
        sock = connect(endpoint.addresses, endpoint.port, deadline)
        status, body = http_get(sock, probe_target(endpoint.address, endpoint.port), path, deadline, MAX_CONFIG)
    except socket.timeout:
        return None, "GET %s timed out after %ss" % (url, float(timeout))
    except (OSError, AnswerError) as exc:
        return None, "GET %s failed: %s" % (url, getattr(exc, "strerror", None) or exc or type(exc).__name__)
    finally:
        if sock is not None:
            sock.close()
    if status != 200:
        return None, "GET %s answered %d" % (url, status)
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        return None, "GET %s answered with something that is not JSON" % url
    if not isinstance(answer, dict) or not isinstance(answer.get("config"), dict):
        return None, "GET %s answered without a config object" % url
    if answer.get("serviceName") not in (None, service.name):
        return None, "GET %s answered as %s, not %s" % (url, str(answer["serviceName"])[:80], service.name)
    return answer["config"], None


@dataclass
class Instance:
    """One instance (a service on a node) that a change applies to, and how it stands."""

    name: str
    node: Optional[str] = None
    address: Optional[str] = None
    port: Optional[int] = None
    registered: bool = False
    via: List[str] = field(default_factory=list)  # the names of the task that apply to it
    reachable: bool = False
    error: Optional[str] = None
    pending_restart: List[str] = field(default_factory=list)
    pending_live: List[str] = field(default_factory=list)
    overridden: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    restart_required: bool = False
    record: object = field(default=None, repr=False)  # its ServiceRecord, None when unknown

    def to_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "record"}


def judge(instance, keys, layout, before, after, running, target_changed, target_folder):
    """Add to ``instance``'s verdict what the relative ``keys`` of one target mean for it.

    before/after: the stored entries before and after this run; running: its flattened effective
    configuration, None when it could not be read; target_changed: whether this run changes the
    target; target_folder: where the target lives (keys of a later layer override it)."""
    expected_before = merged(layout, instance.name, before)
    expected_after = merged(layout, instance.name, after)
    layers = layout.layers(instance.name)
    later = layers[layers.index(target_folder) + 1:] if target_folder in layers else []
    overriding = set(k for folder in later for k in below(after, folder))
    for key in keys:
        if key in overriding:
            _add(instance.overridden, key)
        changed = target_changed and expected_before.get(key) != expected_after.get(key)
        expected = expected_after.get(key)
        pending = instance.pending_live if is_writable(key) else instance.pending_restart
        if running is None:
            # Nothing to compare with: what this run changes outside Writable needs a restart
            # of an instance that is registered (running, as far as the registry knows).
            if changed and instance.registered and not is_writable(key):
                _add(pending, key)
        elif key not in running:
            # Only a restart shows a key the running service never reported (a new map entry);
            # a key that stays unreported is one the service does not know.
            if expected is not None:
                _add(pending if changed else instance.ignored, key)
        elif expected is None:
            if changed:
                _add(pending, key)
        elif not same_value(expected, running[key]):
            _add(pending, key)
    instance.restart_required = bool(instance.pending_restart)


def _add(values, key):
    if key not in values:
        values.append(key)


class ConfigRun(object):
    """One edgex_config (or edgex_config_info) run: read the store once, resolve the names, plan,
    write (unless check mode), read what runs, and say what the change affects.

    ``registry``: the provider (kv_entries, kv_write, kv_delete, kv_check_and_set); ``select``:
    None (running services are not looked at) or a callable returning the Selection of the nodes
    to consider, asked once."""

    def __init__(self, registry, names, select=None, release="auto", timeout=3.0, max_workers=16,
                 check_mode=False):
        self.registry = registry
        self.label = REGISTRY_LABELS.get(registry.type, registry.type)
        self.select = select
        self.timeout = timeout
        self.max_workers = max_workers
        self.check_mode = check_mode
        self.warnings = []
        self.selection = select() if select is not None else None
        self.entries = registry.kv_entries("edgex")
        self.targets = resolve_targets(self._expand_all(names, release), self.entries, registry.type, release)

    def _expand_all(self, names, release):
        """"all": every service with its own configuration (on the selected nodes, when selected)."""
        names = list(dict.fromkeys(names))
        if ALL not in names:
            return names
        releases = DETECTION_ORDER[self.registry.type] if release == "auto" else (int(release),)
        configured = configured_services(self.entries, releases)
        if self.selection is not None:
            configured = [n for n in configured if n in {s.name for s in self.selection.services}]
        if not configured:
            raise ConfigError("no service with a configuration in %s%s: none has started with it as its "
                              "configuration provider yet" % (self.label, " on the selected nodes"
                                                              if self.selection is not None else ""))
        return [n for n in names if n != ALL] + [n for n in configured if n not in names]

    # -- the instances a target applies to, and what they run ------------------------------
    def instances(self, targets):
        """{service name: [Instance]} of the services ``targets`` apply to (on the selected nodes)."""
        by_name = {}
        for target in targets:
            layout = target.layout
            readers = [target.name] if target.kind == "service" else \
                layout.readers_of(target.name, layout.services_with_configuration(self.entries))
            for name in readers:
                records = [s for s in self.selection.services if s.name == name] if self.selection else []
                if self.selection is not None and not records and target.kind == "common":
                    continue  # not deployed on the selected nodes
                for record in records or [None]:
                    _add(self._instance(by_name, name, record).via, target.name)
        return by_name

    def _instance(self, by_name, name, record):
        node = record.node if record is not None else None
        for instance in by_name.setdefault(name, []):
            if instance.node == node:
                return instance
        if record is not None:
            instance = Instance(name=name, node=node, address=record.address, port=record.port,
                                registered=record.registered, record=record)
        elif self.selection is not None:
            instance = Instance(name=name, error="not known to the registry on the selected nodes")
        else:
            # Running services were not asked about: it counts as running, so that what this
            # run changes outside Writable is said to need a restart.
            instance = Instance(name=name, registered=True, error="not looked at (check_running is false)")
        by_name[name].append(instance)
        return instance

    def read_instances(self, instances):
        """{id(instance): flattened running configuration, or None}, read concurrently."""
        def read(instance):
            if instance.record is None:
                return None
            config, error = read_running(instance.record, self._layout_of(instance).api_base, self.timeout)
            if error:
                instance.error = error if instance.registered else "%s (not registered: stopped?)" % error
                return None
            instance.reachable = True
            return flatten_effective(config)

        if not instances:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(instances)))) as pool:
            return dict(zip([id(i) for i in instances], pool.map(read, instances)))

    def _layout_of(self, instance):
        return next(t.layout for t in self.targets if t.name in instance.via)

    # -- changing --------------------------------------------------------------------------
    def change(self, settings, state):
        """Plan, apply (unless check mode), read what runs and judge; the module's result."""
        plans = {t.name: plan_changes(t, settings, state, self.entries) for t in self.targets}
        changes = [c for t in self.targets for c in plans[t.name]]
        if not self.check_mode:
            apply_changes(self.registry, changes, self.label)
        after = after_changes(self.entries, changes)
        wanted, lists = flatten(settings)
        keys = set(wanted) | (set(lists) if state == "absent" else set())
        keys = sorted(keys | set(c.relative for c in changes))
        instances = self.instances(self.targets)
        everyone = [i for group in instances.values() for i in group]
        running = self.read_instances(everyone) if self.selection is not None else {}
        for instance in everyone:
            for target in self.targets:
                if target.name in instance.via:
                    judge(instance, keys, target.layout, self.entries, after, running.get(id(instance)),
                          bool(plans[target.name]), target.folder)
            for key in instance.ignored:
                self.warnings.append("%s%s does not report %s in its configuration: EdgeX ignores keys its "
                                     "configuration does not define" % (
                                         instance.name, " on %s" % instance.node if instance.node else "", key))
        result = dict(
            changed=bool(changes),
            changes=[c.to_dict() for c in changes],
            applied_live=sorted(set(c.relative for c in changes if is_writable(c.relative))),
            restart_required=self._restart_order(everyone),
            services=[i.to_dict() for i in everyone],
            in_sync=None if self.selection is None else not changes and all(self._settled(i) for i in everyone),
            check_and_set=bool(self.registry.kv_check_and_set),
            targets=[asdict(t) for t in self.targets],
            diff={"before": {c.key: c.before for c in changes if c.before is not None},
                  "after": {c.key: c.after for c in changes if c.after is not None}},
        )
        return result

    @staticmethod
    def _settled(instance):
        """Does it show everything asked (or, not registered, will it read it when it starts)?"""
        if not instance.registered:
            return True
        return instance.reachable and not instance.pending_restart and not instance.pending_live

    @staticmethod
    def _restart_order(instances):
        depends_on = {}
        for instance in instances:
            if instance.restart_required:
                depends_on[instance.name] = list(getattr(instance.record, "depends_on", None) or [])
        return [name for level in start_levels(depends_on) for name in level] if depends_on else []

    # -- reading ---------------------------------------------------------------------------
    def read(self):
        """What edgex_config_info returns: per name, the stored configuration and, per instance,
        what it runs beside what a restart would give it, and where they differ."""
        instances = self.instances([t for t in self.targets if t.kind == "service"])
        everyone = [i for group in instances.values() for i in group]
        running = self.read_instances(everyone) if self.selection is not None else {}
        configurations = []
        for target in self.targets:
            entry = dict(asdict(target), stored=unflatten(below(self.entries, target.folder)))
            if target.kind == "common":
                entry["read_by"] = target.layout.readers_of(
                    target.name, target.layout.services_with_configuration(self.entries))
            else:
                entry["layers"] = target.layout.layers(target.name)
                expected = merged(target.layout, target.name, self.entries)
                entry["instances"] = [side_by_side(i, expected, running.get(id(i)))
                                      for i in instances.get(target.name, []) if self.selection is not None]
            configurations.append(entry)
        return configurations


def side_by_side(instance, expected, running):
    """One instance's running configuration beside what its stored layers give, and the keys that differ."""
    differences = []
    if running is not None:
        for key in sorted(expected):
            if key not in running or not same_value(expected[key], running[key]):
                differences.append({"key": key, "stored": expected[key], "running": running.get(key),
                                    "live": is_writable(key)})
    return {"node": instance.node, "address": instance.address, "port": instance.port,
            "registered": instance.registered, "error": instance.error,
            "running": unflatten(running) if running is not None else None, "differences": differences}


def config_options():
    """The options edgex_config and edgex_config_info share (beside the registry's)."""
    return dict(
        name=dict(type="list", elements="str", required=True),
        release=dict(type="str", default="auto", choices=list(RELEASES)),
        node=dict(type="str"),
        check_running=dict(type="bool", default=True),
        probe_timeout=dict(type="float", default=3.0),
    )


def open_run(registry, params, select, check_mode=False):
    """The ConfigRun of an edgex_config or edgex_config_info task: ``registry`` is its provider (None
    for registry_type none), ``params`` its options (name, node, release, check_running,
    probe_timeout), ``select(nodes)`` its Selection of nodes. Authentication failures of the
    key/value store say what the token needs; they never fall back to the manifest."""
    if registry is None or registry.type not in DETECTION_ORDER:
        raise ConfigError("registry_type %s has no configuration store: EdgeX keeps its configuration in Consul "
                          "(2.x, 3.x) or core-keeper (4.x)" % ("none" if registry is None else registry.type))
    nodes = [params["node"]] if params.get("node") else None
    selection = (lambda: select(nodes)) if params.get("check_running", True) else None
    return ConfigRun(_TokenHint(registry), params["name"], selection, params.get("release", "auto"),
                     params.get("probe_timeout", 3.0), check_mode=check_mode)


class _TokenHint(object):
    """The provider, with a 401/403 on its key/value store explained for configuration work."""

    def __init__(self, registry):
        self._registry = registry
        self.type = registry.type
        self.kv_check_and_set = registry.kv_check_and_set

    def _call(self, function, *args):
        try:
            return function(*args)
        except RegistryAuthError as exc:
            raise ConfigError("%s (configuration needs a token that may read every key under edgex/ and write the "
                              "keys it changes: key_prefix \"edgex/\" read and write)" % exc)

    def kv_entries(self, folder):
        return self._call(self._registry.kv_entries, folder)

    def kv_write(self, key, value, index=None):
        return self._call(self._registry.kv_write, key, value, index)

    def kv_delete(self, key, index=None):
        return self._call(self._registry.kv_delete, key, index)
