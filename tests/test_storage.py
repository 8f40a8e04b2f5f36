"""The storage-fault classifier on the wordings the native writers use (written here by hand from their
messages), and the paragraph it leads to. The real command's faults are in test_storage_faults."""

import errno

import pytest

from resnet_jax.errors import UserError
from resnet_jax.runtime import storage

TENSORSTORE_FULL = (
    'RESOURCE_EXHAUSTED: Error writing "params.conv1.kernel/0" in OCDBT database at local file '
    '"/scratch/run/checkpoints/40.orbax-checkpoint-tmp/default/ocdbt.process_0/": Failed to write 171052 bytes '
    "to file 6: No space left on device [os_error_code='28']"
)
TENSORSTORE_QUOTA = (
    'RESOURCE_EXHAUSTED: Error opening file "/home/me/run/checkpoints/3/d/abc": Failed to write: '
    "[os_error_code='122'] [source locations='tensorstore/internal/os/file_util_posix.cc:250']"
)
TENSORSTORE_GCS = (
    'PERMISSION_DENIED: Error writing "gs://lab/run/checkpoints/3/default/manifest.ocdbt": HTTP response code: '
    '403 with body: {"error": {"code": 403, "message": "lab-sa does not have storage.objects.create access"}}'
)
GOOGLE_CLOUD_STORAGE = (
    "403 POST https://storage.googleapis.com/upload/storage/v1/b/lab/o?uploadType=multipart: lab-sa does not "
    "have storage.objects.create access to the Google Cloud Storage object."
)
TENSORFLOW_READ_ONLY = "/data/run/metrics.jsonl.tmp; Read-only file system"
S3 = "An error occurred (AccessDenied) when calling the PutObject operation: Access Denied"
XLA_OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 4294967296 bytes."


@pytest.mark.parametrize(
    "message, said, path",
    [
        (
            TENSORSTORE_FULL,
            "No space left on device",
            "/scratch/run/checkpoints/40.orbax-checkpoint-tmp/default/ocdbt.process_0/",
        ),
        (TENSORSTORE_QUOTA, "Disk quota exceeded", "/home/me/run/checkpoints/3/d/abc"),
        (TENSORSTORE_GCS, TENSORSTORE_GCS[:300], "gs://lab/run/checkpoints/3/default/manifest.ocdbt"),
        (GOOGLE_CLOUD_STORAGE, GOOGLE_CLOUD_STORAGE, None),
        (TENSORFLOW_READ_ONLY, "Read-only file system", None),
        (S3, S3, None),
    ],
)
def test_the_native_writers_faults_are_recognised_with_their_path(message, said, path):
    assert storage.fault_of(ValueError(message)) == (said, path)


@pytest.mark.parametrize(
    "error",
    [ValueError(XLA_OOM), FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), ValueError("bad shape")],
)
def test_other_errors_are_not_storage_faults(error):
    assert storage.fault_of(error) is None


def test_an_os_error_is_recognised_by_its_number_through_the_chain():
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/data/run/config.tmp")
        except OSError as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as outer:
        assert storage.fault_of(outer) == ("Read-only file system", "/data/run/config.tmp")


def test_a_write_to_an_open_file_is_given_its_path(tmp_path):
    with pytest.raises(OSError) as failed, storage.naming(tmp_path / "metrics.jsonl"):
        with open("/dev/full", "w") as full:
            full.write("x")
            full.flush()
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(tmp_path / "metrics.jsonl")


def test_a_fault_in_the_block_becomes_one_paragraph_and_other_errors_pass(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["/repo/resnet_jax/main.py", "--config=configs/digits.py", f"--workdir={tmp_path}"])
    with pytest.raises(storage.StorageFault) as fault, storage.reported(tmp_path):
        raise ValueError(TENSORSTORE_FULL)
    assert isinstance(fault.value, UserError)
    assert str(fault.value) == (
        "the workdir's storage failed at /scratch/run/checkpoints/40.orbax-checkpoint-tmp/default/ocdbt.process_0/: "
        "No space left on device. No checkpoint had been saved yet, so a resume starts from the beginning. Free "
        "space, raise the quota or restore write access (or choose another --workdir), then resume with: python -m "
        f"resnet_jax.main --config=configs/digits.py --workdir={tmp_path}"
    )
    with pytest.raises(KeyError), storage.reported(tmp_path):
        raise KeyError("not storage")
