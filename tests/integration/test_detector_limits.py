"""The detector's request limits fit their fields' use (issue 37, items 5 and 24), through a real
gRPC server (trademesh.core.platform.rpc's edge) on a real Engine and PostgreSQL
(test_detector_api's `api`): every shipped strategy file and a long description are taken; a
patch holds at most MAX_MODULES modules and MAX_CABLES cables, refused as INVALID_ARGUMENT naming
the field, by AddModule and by a strategy file alike."""

from __future__ import annotations

import grpc
import pytest

from tests.integration.postgres_server import database_url
from tests.integration.test_detector_api import Api, T, api
from trademesh.core.detector.config import EXAMPLES_DIR
from trademesh.core.detector.engine.graph import MAX_CABLES, MAX_MODULES
from trademesh.core.platform.rpc.limits import MAX_STRING_CHARS
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.patch.v1 import patch_pb2 as pb

__all__ = ["api", "database_url"]  # fixtures

pytestmark = pytest.mark.integration


async def test_every_shipped_strategy_and_a_long_description_are_taken(api: Api) -> None:
    shipped = sorted(EXAMPLES_DIR.glob("*.toml"))
    assert len(shipped) >= 3
    for path in shipped:
        text = path.read_text()
        assert len(text) > MAX_STRING_CHARS  # the blanket cap refused every one
        made = await api.stub.CreatePatch(pb.CreatePatchRequest(strategy_toml=text), timeout=T)
        assert made.patches, path.name
    about = "What this patch is for, at length. " * 100  # 3,500 characters
    made = await api.stub.CreatePatch(
        pb.CreatePatchRequest(patch_id="described", name="Described", description=about), timeout=T
    )
    assert made.patch.description == about
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.UpdatePatch(
            pb.UpdatePatchRequest(patch_id="described", description="x" * (4 * 1024 + 1)), timeout=T
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request_violations(caught.value)] == ["description"]


async def test_a_patch_holds_at_most_its_cap_of_modules(api: Api) -> None:
    await api.stub.CreatePatch(pb.CreatePatchRequest(patch_id="big", name="Big"), timeout=T)
    for index in range(MAX_MODULES):
        add = pb.AddModuleRequest(patch_id="big", module_id=f"m{index}", type="abs")
        await api.stub.AddModule(add, timeout=T)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.AddModule(
            pb.AddModuleRequest(patch_id="big", module_id="one_more", type="abs"), timeout=T
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, text)] = bad_request_violations(caught.value)
    assert field == "module_id" and f"{MAX_MODULES} modules" in text


@pytest.mark.parametrize(("key", "most"), [("modules", MAX_MODULES), ("cables", MAX_CABLES)])
async def test_a_strategy_file_over_the_cap_is_refused_naming_it(api: Api, key: str, most: int) -> None:
    modules = "".join(f'[[modules]]\nid = "m{i}"\ntype = "abs"\n' for i in range(MAX_MODULES + 1))
    cables = ", ".join(f'"m{i}.out -> m{i + 1}.a"' for i in range(MAX_CABLES + 1))
    text = 'id = "huge"\nvenues = ["sim"]\nsymbols = ["BTC/USDT"]\n'
    text += f"cables = [{cables}]\n" if key == "cables" else ""
    text += modules if key == "modules" else ""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.CreatePatch(pb.CreatePatchRequest(strategy_toml=text), timeout=T)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, message)] = bad_request_violations(caught.value)
    assert field == f"strategy_toml.{key}" and f"at most {most}" in message
