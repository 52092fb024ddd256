"""The HTML health report as headless Chromium renders it: what the report tests read."""

import os
import subprocess
from html.parser import HTMLParser

import pytest

CHROMIUM = "/usr/bin/chromium"
# The service rows: those needing attention, and those of the gateways where every service is healthy.
SERVICE_TABLES = ("services", "healthy-services")


def require_chromium():
    """The browser's path; a failure under make test (EDGEX_REQUIRE_DOCKER), a skip elsewhere."""
    if not os.access(CHROMIUM, os.X_OK):
        message = "%s is missing (tests/testbed/install-deps.sh installs it as root on Debian)" % CHROMIUM
        if os.environ.get("EDGEX_REQUIRE_DOCKER"):  # make test: a missing browser is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


class ReportPage(HTMLParser):
    """The rendered report: the service tables' rows as {class, host, table, hidden, cells}, any
    injected elements (the page's own filter script, id report-script, is not one), the root
    element's attributes (the filter script records data-filter and data-shown there)."""

    def __init__(self):
        HTMLParser.__init__(self)
        self.rows, self.injected, self.title, self.root = [], [], "", {}
        self._in_table = None
        self._in_title = False
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.root = attrs
        elif tag == "table" and attrs.get("id") in SERVICE_TABLES:
            self._in_table = attrs["id"]
        elif tag == "title":
            self._in_title = True
        elif (tag in ("img", "script") and attrs.get("id") != "report-script") or attrs.get("id") == "injected":
            self.injected.append(tag)
        elif self._in_table and tag == "tr" and self._cell is None and attrs.get("data-service"):
            self.rows.append({"class": attrs.get("class", ""), "host": attrs.get("data-host"), "cells": [],
                              "table": self._in_table, "hidden": "hidden" in attrs})
        elif self._in_table and tag == "td" and self.rows:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = None
        elif tag == "title":
            self._in_title = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data + " ")
        if self._in_title:
            self.title += data


def chromium_run(chromium, profile, *args):
    argv = [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir=%s" % profile] + list(args)
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        # Headless Chromium waits forever on a dialog, such as an alert() that escaped into the page.
        pytest.fail("chromium did not finish within 60s: %s" % " ".join(argv))
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def rendered(chromium, profile, url):
    """The page at ``url`` after its scripts ran, parsed."""
    page = ReportPage()
    page.feed(chromium_run(chromium, profile, "--dump-dom", url))
    return page
