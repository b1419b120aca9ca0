"""A pod whose volume item path leaves its volume is a 422 Invalid Status naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.client.client import Client
from k8py.client.errors import ApiError

ITEM = {"path": "../../etc/x", "fieldRef": {"fieldPath": "metadata.name"}}


@pytest.mark.parametrize("volume,field", [
    ({"downwardAPI": {"items": [ITEM]}}, "spec.volumes[0].downwardAPI.items[0].path"),
    ({"projected": {"sources": [{"downwardAPI": {"items": [ITEM]}}]}},
     "spec.volumes[0].projected.sources[0].downwardAPI.items[0].path"),
])
async def test_item_path_with_dotdot_is_422(client: Client, volume: dict[str, Any], field: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": [{"name": "v", **volume}]}}
    with pytest.raises(ApiError) as e:
        await client.create("pods", pod)
    body = e.value.body
    assert e.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == f'Pod "p" is invalid: {field}: Invalid value: "../../etc/x": must not contain \'..\''
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": field,
                                          "message": "Invalid value: \"../../etc/x\": must not contain '..'"}]
    with pytest.raises(ApiError) as e:
        await client.get("pods", "p", "default")
    assert e.value.status == 404
