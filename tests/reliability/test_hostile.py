"""Hostile input, property-based: every reader, the sentence splitter/chunker and every HTTP endpoint.

A few hundred generated inputs each here; bench/reliability.py runs 10,000 each.
"""

import pytest
from fastapi.testclient import TestClient

from hostile import fuzz, make_app

N = 150


@pytest.mark.parametrize("name", ["reader-txt", "reader-md", "reader-html", "jsonl", "parquet", "chunker"])
def test_readers_and_chunker_never_crash(name):
    assert fuzz(name, N) == N


def test_every_endpoint_answers_hostile_requests_with_a_clear_4xx(tmp_path):
    with TestClient(make_app(root=tmp_path)) as client:
        assert fuzz("http", 2 * N, client) == 2 * N


def test_the_property_would_catch_a_500(tmp_path):
    """The HTTP property is not vacuous: an endpoint that crashes is reported."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient as TC

    from hostile import check_response

    app = FastAPI()

    @app.post("/boom")
    def boom():
        raise RuntimeError("bug")

    with TC(app, raise_server_exceptions=False) as c:
        with pytest.raises(AssertionError):
            check_response(c.post("/boom"))
