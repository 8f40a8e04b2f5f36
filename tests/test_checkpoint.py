"""Strict checkpoint restore, damaged and partial checkpoints, and pretrained-variable merging, on tiny trees."""

import json
import logging
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resnet_jax.models import create_model
from resnet_jax.train import checkpoint, pretrained
from resnet_jax.train.state import TrainState


def state_with(params: dict) -> TrainState:
    return TrainState(
        step=jnp.array(7, jnp.int32),
        params=params,
        batch_stats={"bn1": {"mean": jnp.zeros(3)}},
        opt_state={},
        rng=jax.random.PRNGKey(0),
    )


def abstract(state: TrainState) -> TrainState:
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), state)


def test_restore_round_trips_the_state_and_the_wall_time(tmp_path):
    saved = state_with({"conv1": {"kernel": jnp.arange(6.0).reshape(2, 3)}})
    manager = checkpoint.Checkpointer(tmp_path)
    manager.save(7, saved, wall_time_s=12.5)
    manager.wait_until_finished()
    reopened = checkpoint.Checkpointer(tmp_path)
    restored = reopened.restore(abstract(saved))
    assert int(restored.step) == 7 and reopened.wall_time_s(7) == 12.5
    np.testing.assert_array_equal(restored.params["conv1"]["kernel"], saved.params["conv1"]["kernel"])


def test_restore_names_every_mismatch(tmp_path):
    manager = checkpoint.Checkpointer(tmp_path)
    manager.save(7, state_with({"conv1": {"kernel": jnp.ones((2, 3))}, "old": {"bias": jnp.ones(2)}}), wall_time_s=0.0)
    manager.wait_until_finished()
    target = abstract(state_with({"conv1": {"kernel": jnp.ones((2, 4))}, "fc": {"bias": jnp.ones(2)}}))
    with pytest.raises(ValueError) as error:
        checkpoint.Checkpointer(tmp_path).restore(target)
    message = str(error.value)
    assert "missing: params/fc/bias" in message
    assert "unexpected: params/old/bias" in message
    assert "params/conv1/kernel (saved (2, 3), model (2, 4))" in message
    assert "fresh --workdir" in message


def test_merge_keeps_a_fresh_head_when_the_class_count_changes(caplog):
    fresh = {"params": {"conv1": {"kernel": np.zeros((2, 2))}, "fc": {"kernel": np.zeros((2, 5))}}}
    loaded = {"params": {"conv1": {"kernel": np.ones((2, 2))}, "fc": {"kernel": np.ones((2, 10))}}}
    with caplog.at_level("INFO"):
        merged = pretrained.merge(fresh, loaded)
    assert "loaded 1 arrays (4 values); re-initialised params/fc/kernel (shape differs)" in caplog.text
    np.testing.assert_array_equal(merged["params"]["conv1"]["kernel"], 1.0)
    np.testing.assert_array_equal(merged["params"]["fc"]["kernel"], np.zeros((2, 5)))
    same_classes = {"params": {**loaded["params"], "fc": {"kernel": np.ones((2, 5))}}}
    np.testing.assert_array_equal(pretrained.merge(fresh, same_classes)["params"]["fc"]["kernel"], 1.0)
    reinit = pretrained.merge(fresh, same_classes, reinit_head=True)
    np.testing.assert_array_equal(reinit["params"]["fc"]["kernel"], 0.0)


def test_merge_refuses_another_architecture():
    fresh = {"params": {"conv1": {"kernel": np.zeros((3, 3))}, "fc": {"kernel": np.zeros((2, 5))}}}
    loaded = {"params": {"conv1": {"kernel": np.ones((2, 2))}, "fc": {"kernel": np.ones((2, 5))}}}
    with pytest.raises(ValueError, match="conv1/kernel"):
        pretrained.merge(fresh, loaded)


def test_init_from_another_models_workdir_names_both_models_and_what_to_set(tmp_path):
    """A resnet20 workdir given to a resnet32 run: the refusal names the two models and the field to set; it
    does not say to start a fresh workdir (the run's own workdir is not the problem)."""
    (tmp_path / "checkpoints" / "40").mkdir(parents=True)
    (tmp_path / "config.json").write_text(json.dumps({"model": "cifar_resnet20"}))
    fresh = {"params": {"conv1": {"kernel": np.zeros((3, 3))}, "fc": {"kernel": np.zeros((2, 5))}}}
    loaded = {"params": {"conv1": {"kernel": np.ones((2, 2))}, "fc": {"kernel": np.ones((2, 5))}}}
    advice = pretrained.mismatch_advice(tmp_path, "cifar_resnet32")
    with pytest.raises(ValueError) as refusal:
        pretrained.merge(fresh, loaded, advice=advice)
    message = str(refusal.value)
    assert "conv1/kernel" in message and "fresh --workdir" not in message
    assert f"init_from={tmp_path} holds cifar_resnet20, and this run builds cifar_resnet32" in message
    assert "set --config.model=cifar_resnet20" in message
    assert "another variant of cifar_resnet20" in pretrained.mismatch_advice(tmp_path, "cifar_resnet20")


def test_find_checkpoint_dir_accepts_workdir_manager_dir_and_step_dir(tmp_path):
    (tmp_path / "checkpoints" / "40").mkdir(parents=True)
    assert checkpoint.find_checkpoint_dir(tmp_path) == (tmp_path / "checkpoints", None)
    assert checkpoint.find_checkpoint_dir(tmp_path / "checkpoints") == (tmp_path / "checkpoints", None)
    assert checkpoint.find_checkpoint_dir(tmp_path / "checkpoints" / "40") == (tmp_path / "checkpoints", 40)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoint.find_checkpoint_dir(tmp_path / "nowhere")


def test_init_from_reads_a_torchvision_pth_file(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_resnet

    network = torch_resnet.build("resnet18", num_classes=1000)
    torch.save({"state_dict": network.state_dict()}, tmp_path / "resnet18.pth")
    model = create_model("resnet18", num_classes=10)  # the run's head; the .pth's has 1000 classes
    variables = pretrained.load(tmp_path / "resnet18.pth", model, "resnet18")
    assert variables["params"]["fc"]["kernel"].shape == (512, 1000)
    np.testing.assert_allclose(
        variables["params"]["layer2_0"]["conv1"]["kernel"],
        network.layer2[0].conv1.weight.detach().numpy().transpose(2, 3, 1, 0),
    )
    np.testing.assert_allclose(variables["batch_stats"]["bn1"]["var"], network.bn1.running_var.numpy())


def _saved_steps(directory, steps=(1, 2)) -> None:
    manager = checkpoint.Checkpointer(directory)
    for step in steps:
        manager.save(step, state_with({"conv1": {"kernel": jnp.full((2, 3), float(step))}}), wall_time_s=0.0)
    manager.close()


def _truncate_data_files(step_dir) -> None:
    for path in step_dir.rglob("*"):
        if path.is_file() and path.parent.name == "d":
            with path.open("r+b") as file:
                file.truncate(5)


TARGET = abstract(state_with({"conv1": {"kernel": jnp.ones((2, 3))}}))


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, damage, caplog):
    _saved_steps(tmp_path)
    if damage == "truncated":
        _truncate_data_files(tmp_path / "2")
    else:
        for path in (tmp_path / "2").iterdir():
            if path.is_dir():
                shutil.rmtree(path)
    manager = checkpoint.Checkpointer(tmp_path)
    with caplog.at_level(logging.WARNING):
        restored = manager.restore_latest(TARGET)
    np.testing.assert_array_equal(restored.params["conv1"]["kernel"], 1.0)  # step 1's values
    assert str(tmp_path / "2") in caplog.text and "cannot be read" in caplog.text
    assert (tmp_path / "2.corrupt").is_dir() and manager.latest_step() == 1
    manager.save(2, state_with({"conv1": {"kernel": jnp.full((2, 3), 5.0)}}), wall_time_s=0.0)  # step 2 is not skipped
    manager.close()
    again = checkpoint.Checkpointer(tmp_path).restore_latest(TARGET)
    np.testing.assert_array_equal(again.params["conv1"]["kernel"], 5.0)


def test_a_step_damaged_twice_is_set_aside_twice(tmp_path):
    _saved_steps(tmp_path)
    for value in (5.0, 6.0):
        _truncate_data_files(tmp_path / "2")
        manager = checkpoint.Checkpointer(tmp_path)
        np.testing.assert_array_equal(manager.restore_latest(TARGET).params["conv1"]["kernel"], 1.0)
        manager.save(2, state_with({"conv1": {"kernel": jnp.full((2, 3), value)}}), wall_time_s=0.0)
        manager.close()
    assert (tmp_path / "2.corrupt").is_dir() and (tmp_path / "2.corrupt1").is_dir()
    np.testing.assert_array_equal(checkpoint.Checkpointer(tmp_path).restore_latest(TARGET).params["conv1"]["kernel"], 6)


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    _saved_steps(tmp_path)
    for step in (1, 2):
        _truncate_data_files(tmp_path / str(step))
    with pytest.raises(checkpoint.NoReadableCheckpoint, match=r"steps \[2, 1\]; the newest failed with \w+"):
        checkpoint.Checkpointer(tmp_path).restore_latest(TARGET)
    assert (tmp_path / "1").is_dir() and (tmp_path / "2").is_dir()  # nothing renamed when nothing restored


def test_another_models_checkpoint_is_an_error_at_once_not_a_fallback(tmp_path):
    _saved_steps(tmp_path)
    other = abstract(state_with({"conv1": {"kernel": jnp.ones((2, 4))}}))
    with pytest.raises(checkpoint.IncompatibleCheckpoint, match="shape mismatch"):
        checkpoint.Checkpointer(tmp_path).restore_latest(other)
    assert not list(tmp_path.glob("*.corrupt"))


def test_an_interrupted_save_is_never_picked_up_and_never_blocks_the_next(tmp_path, caplog):
    _saved_steps(tmp_path)
    partial = tmp_path / "3.orbax-checkpoint-tmp-1234567"  # what a write killed half-way leaves behind
    (partial / "default").mkdir(parents=True)
    (partial / "default" / "manifest.ocdbt").write_bytes(b"\0" * 7)
    with caplog.at_level(logging.WARNING):
        manager = checkpoint.Checkpointer(tmp_path)
    assert f"Removing {partial}: a checkpoint save that did not finish" in caplog.text
    assert manager.latest_step() == 2
    np.testing.assert_array_equal(manager.restore_latest(TARGET).params["conv1"]["kernel"], 2.0)
    manager.save(3, state_with({"conv1": {"kernel": jnp.full((2, 3), 3.0)}}), wall_time_s=0.0)
    manager.close()
    assert checkpoint.Checkpointer(tmp_path).latest_step() == 3
    assert not partial.exists()
