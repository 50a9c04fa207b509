"""Empty or whitespace-only prompts and texts are refused with a clear 4xx, before anything is encoded."""

import json

import pytest

from test_serve_app import make_client, parts  # noqa: F401  (parts is a fixture)


@pytest.mark.parametrize("path, body, msg", [
    ("/generate", {"prompt": ""}, "at least 1 character"),
    ("/generate", {"prompt": " \n\t "}, "prompt is empty"),
    ("/encode", {"texts": [""]}, "texts[0] is empty"),
    ("/encode", {"texts": ["Fine.", "\n  "]}, "texts[1] is empty"),
])
def test_empty_prompt_or_text_is_a_4xx(parts, path, body, msg):  # noqa: F811
    before = len(parts[1].calls)  # the fixture encoded the store's texts
    with make_client(parts) as c:
        r = c.post(path, json=body)
    assert r.status_code == 422, r.text
    assert msg in json.dumps(r.json()["detail"])
    assert len(parts[1].calls) == before
